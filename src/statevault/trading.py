"""TradingStateManager: the spec's trading API, with each pair's data in its own frame section.

A trading state is ``{"active_positions": ..., "pair_states": {pair: ...}, **portfolio_data}``.
The root section of the frame holds the positions, the portfolio figures and a small overview
of every pair; each pair's data (price Series, models, ...) is a section of its own. That is
what lets ``get_portfolio_summary()`` read the header and the root only, a few kilobytes out of
a state of hundreds of megabytes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .errors import CorruptStateError, SerializationError, StateError, StateNotFoundError
from .frame import MAGIC, FrameReader
from .layers import TradingLayout, pair_overview, state_path
from .manager import StateManager
from .storage import ObjectInfo

__all__ = ["TradingStateManager"]

log = logging.getLogger("statevault")

_RESERVED = ("active_positions", "pair_states")


class TradingStateManager(StateManager):
    """A ``StateManager`` for trading systems: positions, per-pair states and portfolio figures.

    Everything ``StateManager`` offers (transforms, storage, errors, locks) applies. The
    portfolio summary reads only the frame's header and root section; loading the full state
    reads everything. Legacy JSON written by the spec's hand-written code loads with its
    datetimes and Series restored; the file is rewritten in the new format on the next save.
    """

    kind = TradingLayout.kind
    layout_class = TradingLayout

    @classmethod
    def from_config(cls, config: Any, lock: Any = None, **options: Any) -> TradingStateManager:
        """Build from a config object or mapping carrying ``state_file`` (or ``url``).

        Optional fields: ``storage_options``, ``encryption_key``, ``key_file``, ``compression``,
        ``compression_level``. Explicit ``options`` win over the config's fields.
        """

        def field(name: str) -> Any:
            if isinstance(config, Mapping):
                return config.get(name)
            return getattr(config, name, None)

        url = field("state_file") or field("url") or field("state_url")
        if not url:
            raise StateError("the config has no state_file (or url): set it to the state's path")
        for name in ("storage_options", "encryption_key", "key_file", "compression_level"):
            value = field(name)
            if value is not None:
                options.setdefault(name, value)
        if isinstance(config, Mapping) and "compression" in config:
            options.setdefault("compression", config["compression"])
        elif not isinstance(config, Mapping) and hasattr(config, "compression"):
            options.setdefault("compression", config.compression)
        return cls(url, lock, **options)

    # ------------------------------------------------------------------ trading API

    @staticmethod
    def _compose(
        active_positions: Mapping[Any, Any] | None,
        pair_states: Mapping[Any, Any] | None,
        portfolio_data: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        portfolio = dict(portfolio_data or {})
        clash = [k for k in _RESERVED if k in portfolio]
        if clash:
            raise SerializationError(
                f"portfolio_data may not use the reserved keys {clash}: rename them"
            )
        return {
            "active_positions": dict(active_positions or {}),
            "pair_states": dict(pair_states or {}),
            **portfolio,
        }

    def save_trading(
        self,
        active_positions: Mapping[Any, Any] | None,
        pair_states: Mapping[Any, Any] | None,
        portfolio_data: Mapping[str, Any] | None = None,
    ) -> int:
        """Strict form of ``save_trading_state``: raises ``StateError``; returns the generation."""
        return self.save(self._compose(active_positions, pair_states, portfolio_data))

    def save_trading_state(
        self,
        active_positions: Mapping[Any, Any] | None,
        pair_states: Mapping[Any, Any] | None,
        portfolio_data: Mapping[str, Any] | None = None,
    ) -> bool:
        """Save positions, pair states and portfolio figures; True on success, else logs, False.

        The portfolio keys are stored at the top level of the state, beside
        ``active_positions`` and ``pair_states`` (which they may not be named).
        """
        try:
            state = self._compose(active_positions, pair_states, portfolio_data)
        except StateError as e:
            log.error("save of %s failed: %s", self.url, e)
            return False
        return self.save_state(state)

    def load_trading_state(self) -> dict[str, Any]:
        """Load the trading state; ``{}`` (falsy) when nothing is stored or readable.

        The result reads as the spec uses it: ``state['active_positions']``,
        ``state['pair_states']`` and the portfolio keys at the top level. Failures are logged
        as in ``load_state()``.
        """
        state = self.load_state()
        if state:
            state.setdefault("active_positions", {})
            state.setdefault("pair_states", {})
        return state

    def get_portfolio_summary(self) -> dict[str, Any]:
        """Positions, portfolio figures and a per-pair overview, without reading price data.

        Reads the frame header and the root section only (ranged reads). Returns ``{}`` when
        nothing is stored; raises ``StateError`` subclasses like ``load()`` otherwise. Keys:
        ``active_positions``, ``portfolio`` (every top-level key but positions and pair states),
        ``pairs`` ({pair: overview}), ``generation``, ``last_modified``. A legacy JSON file has
        no sections, so its summary reads the whole file (generation 0).
        """
        with self.lock:
            for attempt in range(3):
                opened = self._open_reader()
                if opened is None:
                    return {}
                reader, info = opened
                if reader is None:
                    return self._legacy_summary(info)
                try:
                    root = self.layers.codec.layout.root(reader)
                except CorruptStateError:
                    # The ranged reads may straddle a replace by another writer: if the object
                    # changed underneath, read the new one; if not, the damage is real.
                    if attempt == 2 or self.store.info() == info:
                        raise
                    continue
                return self._summary(root, reader.header.generation, info)
            raise AssertionError("unreachable")  # pragma: no cover

    def _summary(self, root: Any, generation: int, info: ObjectInfo) -> dict[str, Any]:
        if not isinstance(root, dict) or not isinstance(root.get("state"), dict):
            raise CorruptStateError(f"{self.url} holds no trading state in its root section")
        state = root["state"]
        pairs = root.get("pairs")
        if pairs is None:  # written by a plain StateManager: derive from what is at hand
            pair_states = state.get("pair_states")
            pairs = (
                {p: pair_overview(v) for p, v in pair_states.items()}
                if isinstance(pair_states, dict)
                else {}
            )
        return {
            "active_positions": state.get("active_positions", {}),
            "portfolio": {k: v for k, v in state.items() if k not in _RESERVED},
            "pairs": pairs,
            "generation": generation,
            "last_modified": info.modified,
        }

    def _legacy_summary(self, info: ObjectInfo) -> dict[str, Any]:
        data, info = self.store.read()
        state, generation = self.layers.codec.decode(data)
        pair_states = state.get("pair_states")
        root = {
            "state": state,
            "pairs": (
                {p: pair_overview(v) for p, v in pair_states.items()}
                if isinstance(pair_states, dict)
                else {}
            ),
        }
        return self._summary(root, generation, info)

    def _open_reader(self) -> tuple[FrameReader | None, ObjectInfo] | None:
        """A reader that fetches sections on demand with ranged reads (header read now).

        ``None`` when nothing is stored; ``(None, info)`` when the object is not a statevault
        frame (legacy JSON, or not ours: ``load()`` says which).
        """
        frames = self.layers.frames
        info = frames.store.info()
        if info is None:
            return None
        if frames.store.read_range(0, len(MAGIC)) != MAGIC:
            return None, info
        return frames.ranged_reader(info)

    def load_pair_state(self, pair: str) -> Any:
        """Load one pair's state, reading only the header, the root and that pair's section.

        Raises ``KeyError`` if the state has no such pair, ``StateNotFoundError`` when nothing
        is stored, and like ``load()`` otherwise. A legacy JSON file is read whole.
        """
        with self.lock:
            opened = self._open_reader()
            if opened is None:
                raise StateNotFoundError(f"no state at {self.url}: save one first")
            reader, _info = opened
            if reader is None:
                legacy_pairs = self.load().get("pair_states")
                if isinstance(legacy_pairs, dict) and pair in legacy_pairs:
                    return legacy_pairs[pair]
                raise KeyError(pair)
            layout = self.layers.codec.layout
            root = layout.root(reader)
            state = root.get("state") if isinstance(root, dict) else None
            if not isinstance(state, dict):
                raise CorruptStateError(f"{self.url} holds no state in its root section")
            pair_states = state.get("pair_states")
            if not isinstance(pair_states, dict) or pair not in pair_states:
                raise KeyError(pair)
            path = state_path("pair_states", pair)
            return layout.resolve(pair_states[pair], reader, self.url, path)

"""Read-only inspection of a stored state: ``statevault.open_state(url, **options)``.

A ``StateView`` answers what the command line (and any tool) asks of a stored state without
writing anything: the header, the root section, one value or pair by name (ranged reads: only
its sections), the whole state as stored, a full verification, the retained versions. States
are returned *as stored*: no migration runs and no validator is called, so a tool sees what
is there. Legacy JSON is read as the trading manager reads it when it looks like a trading
state (ISO datetimes and Series restored), as it is otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from .errors import CorruptStateError, StateError, StateNotFoundError, UnsupportedFormatError
from .frame import MAGIC, FrameHeader, FrameReader
from .history import SIDECAR
from .layers import Layers, is_frame, looks_trading, parse_json, pick, restore_legacy
from .manager import StateManager
from .storage import ObjectInfo
from .trading import TradingStateManager
from .transforms import TransformRegistry

__all__ = [
    "Document",
    "KeepVersionsMismatch",
    "StateView",
    "VersionNotRetained",
    "open_state",
]


class VersionNotRetained(StateNotFoundError):
    """The retained version asked for is not (or no longer) kept."""

    def __init__(self, url: str, version: int) -> None:
        super().__init__(f"version {version} of {url} is not retained")
        self.version = version


class KeepVersionsMismatch(StateError):
    """The versions were kept with another ``keep_versions`` than the view's; ``sign`` says why.

    A version lives in slot ``generation % (keep_versions + 1)``: with another setting a
    listing misses versions and a restore would overwrite a slot the writer counts on.
    """

    def __init__(self, url: str, keep: int, sign: str) -> None:
        super().__init__(
            f"the versions of {url} were kept with a keep_versions other than {keep} ({sign})"
        )
        self.keep = keep
        self.sign = sign


@dataclass(frozen=True)
class Document:
    """A whole stored state, decoded as stored: ``format`` is ``"frame"`` or ``"json"``.

    ``header`` is the frame's (None for JSON); ``trading`` tells whether a JSON document looks
    like a trading state (its datetimes and Series were restored).
    """

    state: dict[str, Any]
    format: Literal["frame", "json"]
    header: FrameHeader | None
    size: int
    trading: bool = False


class StateView:
    """Read-only questions about one stored state (see the module docstring)."""

    def __init__(self, manager: StateManager) -> None:
        self._manager = manager
        self._layers: Layers = manager.layers

    @property
    def url(self) -> str:
        """The normalised URL of the state this view reads."""
        return self._manager.url

    @property
    def transform_registry(self) -> TransformRegistry:
        """The transforms this view reads with (their declared properties, e.g. ``compresses``)."""
        return self._manager.transform_registry

    @property
    def keep_versions(self) -> int:
        """The ``keep_versions`` this view reads the versions with."""
        return self._layers.recovery.keep

    def exists(self) -> bool:
        """Whether a state is stored (``StorageError`` when the storage cannot be asked)."""
        return self._manager.state_exists()

    def info(self) -> dict[str, Any]:
        """``StateManager.get_state_info()``: header and storage facts, nothing decoded."""
        return self._manager.get_state_info()

    def header(self, version: int | None = None) -> FrameHeader:
        """The frame header (ranged reads); of retained ``version`` if given."""
        with self._manager.lock:
            if version is not None:
                return self._version_reader(version, ranged=True).header
            return self._layers.frames.header()

    def current_generation(self) -> int | None:
        """The generation stored now; None if nothing is stored or it is not a readable frame."""
        try:
            return self.header().generation
        except (StateNotFoundError, CorruptStateError, UnsupportedFormatError):
            return None

    # -- decoding

    def read(self) -> Document:
        """Read the whole stored object and decode it, as stored (see ``Document``).

        Raises the precise error of an object that is neither a frame nor a JSON object.
        """
        with self._manager.lock:
            data, info = self._layers.frames.read()
            if not is_frame(data):
                legacy = parse_json(data)
                if legacy is not None:
                    return self._json_document(legacy, info)
            reader = self._layers.frames.reader(data)
            return Document(self._join(reader), "frame", reader.header, info.size)

    def json_document(self) -> dict[str, Any] | None:
        """The stored JSON object as written (a legacy state, nothing restored), or None for a
        readable frame; raises the precise error of an object that is neither."""
        with self._manager.lock:
            data, _ = self._layers.frames.read()
            legacy = parse_json(data)
            if legacy is None:
                self._layers.frames.reader(data)  # not a state file, truncated, newer, ...
            return legacy

    def load(self, version: int | None = None) -> Document:
        """The whole state (of retained ``version`` if given), decoded as stored."""
        if version is None:
            return self.read()
        with self._manager.lock:
            reader = self._version_reader(version, ranged=False)
            return Document(self._join(reader), "frame", reader.header, reader.header.size)

    def section(self, name: str, version: int | None = None) -> Any:
        """One top-level key, or one pair under ``pair_states``, reading as little as possible.

        For a frame: the header, the root section and only the sections the value refers to.
        Legacy JSON is read whole. ``KeyError`` (``statevault.layers.NoSuchName``, with the
        names there are) when the state has no such key nor pair.
        """
        with self._manager.lock:
            if version is not None:
                reader = self._version_reader(version, ranged=True)
                return self._layers.codec.layout.pick(reader, self.url, name)
            frames = self._layers.frames
            info = frames.store.info()
            if info is None:
                raise StateNotFoundError(f"No state is stored at {self.url}: check the URL.")
            if not is_frame(frames.store.read_range(0, len(MAGIC))):
                return pick(self.read().state, name, lambda v, _path: v)
            reader, _ = frames.ranged_reader(info)
            return self._layers.codec.layout.pick(reader, self.url, name)

    def root(self) -> dict[str, Any]:
        """The state in the root section, values kept in other sections as ``SectionRef``."""
        with self._manager.lock:
            reader, _ = self._layers.frames.ranged_reader()
            return self._layers.codec.layout.root_state(reader, self.url)

    def verify(self) -> Document:
        """Read everything, undo every transform, check every checksum, decode every value.

        Returns the document; raises the first problem found.
        """
        with self._manager.lock:
            data, info = self._layers.frames.read()
            if not is_frame(data):
                legacy = parse_json(data)
                if legacy is not None:
                    return self._json_document(legacy, info)
            reader = self._layers.frames.reader(data)
            for index in range(len(reader.header.sections)):
                reader.section(index)  # undoes the transforms and checks this section's CRC
            return Document(self._join(reader), "frame", reader.header, info.size)

    # -- retained versions

    def versions(self) -> list[dict[str, Any]]:
        """``StateManager.list_versions()``, after checking they were kept with this view's
        ``keep_versions`` (``KeepVersionsMismatch`` if not).

        Two signs of a mismatch: a version in the wrong slot, or a recent version in the slot
        just past the ring (one more header read). A slot past the ring that holds an older
        generation than every listed version was left by an earlier, larger setting.
        """
        with self._manager.lock:
            keep = self.keep_versions
            versions = self._manager.list_versions()
            ring = keep + 1
            sign = next(
                (
                    f"generation {v['generation']} is in slot {v['slot']}"
                    for v in versions
                    if v["generation"] % ring != v["slot"]
                ),
                None,
            )
            if sign is None and keep:
                frames = self._layers.frames
                try:
                    beyond: int | None = frames.header_of(
                        frames.store.sibling(f"{SIDECAR}/{ring}")
                    ).generation
                except StateError:
                    beyond = None
                oldest = min((v["generation"] for v in versions), default=0)
                if beyond is not None and beyond > oldest:
                    sign = f"slot {ring} holds generation {beyond}"
            if sign is not None:
                raise KeepVersionsMismatch(self.url, keep, sign)
            return versions

    def _version_reader(self, version: int, *, ranged: bool) -> FrameReader:
        """A reader of retained ``version``; ``VersionNotRetained`` if it is not kept."""
        slot = self._layers.recovery.find(version)
        if slot is None:
            raise VersionNotRetained(self.url, version)
        frames = self._layers.frames.on(slot)
        try:
            reader = frames.ranged_reader()[0] if ranged else frames.reader(slot.read()[0])
        except StateNotFoundError as e:  # pruned by a save since the lookup
            raise VersionNotRetained(self.url, version) from e
        if reader.header.generation != version:  # replaced by a save since the lookup
            raise VersionNotRetained(self.url, version)
        return reader

    # -- helpers

    def _join(self, reader: FrameReader) -> dict[str, Any]:
        return self._layers.codec.layout.join(reader, self.url)

    def _json_document(self, legacy: dict[str, Any], info: ObjectInfo) -> Document:
        trading = looks_trading(legacy)
        state = restore_legacy(legacy) if trading else legacy
        return Document(state, "json", None, info.size, trading)


def open_state(url: str | os.PathLike[str], **options: Any) -> StateView:
    """A read-only view of the state at ``url``; ``options`` as for ``StateManager``.

    Nothing is written through the view (the manager behind it never saves). Keys come from
    ``encryption_key`` / ``key_file`` / ``STATEVAULT_KEY``; ``keep_versions`` must be the
    writer's for ``versions()`` to be right.
    """
    return StateView(TradingStateManager(url, **options))

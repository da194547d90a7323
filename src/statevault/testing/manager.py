"""``ManagerSuite``: what ``StateManager`` must do on a backend, written once for every backend.

A backend passes when states round-trip exactly under every transform stack, keys and damage
are reported with the right typed errors, stale writers get ``ConflictError``, and the trading
summary reads only what it needs. Hooks a subclass may override: ``sample_state`` (a rich
state; the default uses only the standard library), ``values`` (a hypothesis strategy of
values; the default is built-in types) and ``assert_same`` (exact equality).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..errors import (
    ConflictError,
    CorruptStateError,
    MissingKeyError,
    StateNotFoundError,
    WrongKeyError,
)
from ..keys import generate_key
from ..manager import StateManager
from ..trading import TradingStateManager
from .backend import Backend

__all__ = ["STACKS", "ManagerSuite", "assert_same", "builtin_values"]

KEY = generate_key()
#: The transform stacks every round trip is run under.
STACKS: dict[str, dict[str, Any]] = {
    "none": {"compression": None},
    "zstd": {"compression": "zstd"},
    "fernet": {"compression": None, "encryption_key": KEY},
    "zstd+fernet": {"compression": "zstd", "encryption_key": KEY},
}


def assert_same(a: Any, b: Any, where: str = "value") -> None:
    """Assert ``b`` is an exact copy of ``a`` for built-in types: same type at every level,
    bit-identical floats (NaN equals NaN, -0.0 is not 0.0)."""
    assert type(a) is type(b), f"{where}: type {type(a)} != {type(b)}"
    if isinstance(a, float):
        same = (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
        assert same, f"{where}: {a!r} != {b!r}"
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)!r} != {list(b)!r}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, Decimal):
        assert a.as_tuple() == b.as_tuple(), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, datetime):
        assert (a, a.tzinfo, a.fold) == (b, b.tzinfo, b.fold), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def builtin_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Nested values of the built-in types statevault stores exactly."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.text(),
        st.binary(),
        st.decimals(allow_nan=False),
        st.datetimes(timezones=st.just(UTC)),
        st.dates(),
        st.timedeltas(),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(st.text(max_size=8), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


class ManagerSuite:
    """Behaviour every backend must show through ``StateManager``; supply a ``backend`` fixture
    (a ``Backend`` whose objects start absent), as for ``StoreSuite``."""

    #: Examples per transform stack in the property test.
    property_examples: ClassVar[int] = 15

    # -- hooks ----------------------------------------------------------------------------

    def sample_state(self) -> dict[str, Any]:
        """A state exercising many types (override to add your own, e.g. pandas)."""
        return {
            "t": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
            "day": date(2024, 3, 1),
            "hold": timedelta(minutes=90),
            "seen": {"a", "b"},
            "cash": Decimal("100000.25"),
            "blob": bytes(range(256)) * 64,
            "by_pair": {("EURUSD", "GBPUSD"): [1.5, float("nan"), -0.0]},
            "prices": [1.0 + i / 1000 for i in range(2000)],
        }

    def values(self) -> st.SearchStrategy[Any]:
        """The values of the round-trip property test."""
        return builtin_values()

    def assert_same(self, a: Any, b: Any) -> None:
        """Assert ``b`` is an exact copy of ``a``."""
        assert_same(a, b)

    def manager(self, backend: Backend, name: str = "s.state", **options: Any) -> StateManager:
        return StateManager(
            backend.url(name), storage_options=backend.storage_options or None, **options
        )

    # -- tests ----------------------------------------------------------------------------

    @pytest.mark.parametrize("stack", list(STACKS))
    def test_round_trip_under_every_transform_stack(self, backend: Backend, stack: str) -> None:
        sm = self.manager(backend, **STACKS[stack])
        state = self.sample_state()
        assert sm.save_state(state)
        self.assert_same(self.manager(backend, encryption_key=KEY).load(), state)
        assert sm.get_state_info()["transforms"] == [t for t in ("zstd", "fernet") if t in stack]

    @pytest.mark.parametrize("stack", list(STACKS))
    def test_round_trip_property(self, backend: Backend, stack: str) -> None:
        """Any nested value (the ``values`` hook) through every transform stack."""
        sm = self.manager(
            backend, "prop.state", on_conflict="overwrite", keep_versions=0, **STACKS[stack]
        )

        @settings(
            max_examples=self.property_examples,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            deadline=None,
        )
        @given(value=self.values())
        def check(value: Any) -> None:
            sm.save({"v": value})
            self.assert_same(sm.load()["v"], value)

        check()

    def test_saved_bytes_are_in_the_backend(self, backend: Backend) -> None:
        """The state is in the backend itself (read around the store), as a statevault frame."""
        sm = self.manager(backend, "raw.state", compression=None)
        sm.save({"a": 1})
        raw = backend.get_raw("raw.state")
        assert raw is not None
        assert raw.startswith(b"\x89SVT\r\n\x1a\n")
        backend.put_raw("copy.state", raw)
        assert self.manager(backend, "copy.state").load() == {"a": 1}

    def test_cross_reading_between_configurations(self, backend: Backend) -> None:
        writer = self.manager(backend, compression="zstd", encryption_key=KEY)
        writer.save({"x": list(range(50))})
        plain_reader = self.manager(backend, compression=None, encryption_key=[generate_key(), KEY])
        assert plain_reader.load() == {"x": list(range(50))}

    def test_exists_info_delete(self, backend: Backend) -> None:
        sm = self.manager(backend)
        assert sm.state_exists() is False
        assert sm.get_state_info()["exists"] is False
        sm.save({"a": 1})
        sm.save({"a": 2})
        info = sm.get_state_info()
        assert info["exists"] is True
        assert info["generation"] == 2
        assert info["size"] > 0
        assert info["last_modified"].tzinfo is not None
        assert sm.delete_state() is True
        assert sm.state_exists() is False
        with pytest.raises(StateNotFoundError):
            sm.load()

    def test_key_errors(self, backend: Backend) -> None:
        self.manager(backend, encryption_key=KEY).save({"secret": 1})
        with pytest.raises(MissingKeyError):
            self.manager(backend).load()
        with pytest.raises(WrongKeyError):
            self.manager(backend, encryption_key=generate_key()).load()

    def test_damage_is_detected_and_left_in_place(self, backend: Backend) -> None:
        sm = self.manager(backend, compression=None)
        sm.save({"a": "x" * 1000})
        raw = backend.get_raw("s.state")
        assert raw is not None
        data = bytearray(raw)
        data[-10] ^= 0x01
        backend.put_raw("s.state", bytes(data))  # damaged behind statevault's back
        with pytest.raises(CorruptStateError):
            self.manager(backend).load()
        # The forgiving load falls back to the retained copy of that generation, loudly.
        fallback = self.manager(backend)
        assert fallback.load_state() == {"a": "x" * 1000}
        assert fallback.last_load_source == "version 1"
        assert fallback.get_state_info()["fallback"]["generation"] == 1
        # Without history there is nothing to fall back to: empty, and said to be a failure.
        no_history = self.manager(backend, keep_versions=0)
        assert no_history.load_state() == {}
        assert no_history.last_load_source == "failed"
        assert isinstance(no_history.last_load_error, CorruptStateError)
        assert backend.get_raw("s.state") == bytes(data)  # nothing was "repaired" away

    def test_stale_writer_conflicts(self, backend: Backend) -> None:
        a, b = self.manager(backend), self.manager(backend)
        a.save({"who": "a"})
        b.load()
        a.save({"who": "a", "n": 2})
        with pytest.raises(ConflictError) as ei:
            b.save({"who": "b"})
        assert (ei.value.expected, ei.value.found) == (1, 2)
        assert self.manager(backend).load() == {"who": "a", "n": 2}

    def test_trading_summary_and_full_load(self, backend: Backend) -> None:
        tsm = TradingStateManager(
            backend.url("t.state"), storage_options=backend.storage_options or None
        )
        pairs = {f"P{i}": {"price1": [float(j) for j in range(100)]} for i in range(5)}
        entry = datetime(2024, 1, 1, 0, 3, tzinfo=UTC)
        assert tsm.save_trading_state({"P1": {"entry_time": entry}}, pairs, {"peak": 1.5})
        summary = tsm.get_portfolio_summary()
        assert summary["portfolio"] == {"peak": 1.5}
        assert set(summary["pairs"]) == set(pairs)
        self.assert_same(tsm.load_trading_state()["pair_states"], pairs)

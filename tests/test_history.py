"""Versions, restore, recovery without silent loss, migrations and validation, on every backend."""

from __future__ import annotations

import logging
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statevault import (
    ConflictError,
    CorruptStateError,
    MigrationError,
    SchemaVersionError,
    StateManager,
    StateNotFoundError,
    UnsupportedFormatError,
    ValidationError,
)
from statevault.frame import FORMAT_VERSION
from test_frame import forge_raw

from backends import (
    Backend,
    GenericFixtures,
    LocalFixtures,
    MemoryFixtures,
    S3Fixtures,
)
from emulators import AzureFixtures, GCSFixtures


def corrupt(sm: StateManager) -> bytes:
    """Flip one byte in the middle of the stored object; return the damaged bytes."""
    data = bytearray(sm.store.read()[0])
    data[len(data) // 2] ^= 0x40
    sm.store.write([bytes(data)])
    return bytes(data)


class HistorySuite:
    def manager(self, backend: Backend, **options: Any) -> StateManager:
        return StateManager(
            backend.url("h.state"), storage_options=backend.storage_options or None, **options
        )

    def test_list_load_and_prune(self, backend: Backend) -> None:
        sm = self.manager(backend, keep_versions=2)
        for n in range(1, 6):
            sm.save({"n": n})
        versions = sm.list_versions()
        # The current generation and the 2 before it; older ones were pruned.
        assert [v["generation"] for v in versions] == [5, 4, 3]
        assert [v["current"] for v in versions] == [True, False, False]
        assert all(v["size"] > 0 and v["created"].tzinfo is not None for v in versions)
        assert sm.load(version=4) == {"n": 4}
        assert sm.load_state(version=3) == {"n": 3}
        with pytest.raises(StateNotFoundError, match="not retained"):
            sm.load(version=2)
        assert sm.load_state(version=2) == {}
        assert sm.last_load_source == "failed"
        assert sm.load() == {"n": 5}  # reading versions does not change the current state

    def test_restore_is_a_new_save_that_can_be_undone(self, backend: Backend) -> None:
        sm = self.manager(backend)
        sm.save({"n": 1})
        sm.save({"n": 2})
        assert sm.restore(1) == 3
        assert self.manager(backend).load() == {"n": 1}
        assert sm.restore(2) == 4
        assert self.manager(backend).load() == {"n": 2}

    def test_no_history(self, backend: Backend) -> None:
        sm = self.manager(backend, keep_versions=0)
        sm.save({"n": 1})
        sm.save({"n": 2})
        assert sm.list_versions() == []
        with pytest.raises(StateNotFoundError):
            sm.load(version=1)

    def test_unreadable_current_falls_back_loudly_and_is_kept_aside(
        self, backend: Backend, caplog: pytest.LogCaptureFixture
    ) -> None:
        sm = self.manager(backend)
        sm.save({"n": 1})
        sm.save({"n": 2})
        damaged = corrupt(sm)
        # The slot of generation 2 is damaged too: recovery must skip it and name it.
        slot = sm.store.sibling(".versions/2")
        slot.write([b"garbage"])
        reader = self.manager(backend)
        with pytest.raises(CorruptStateError):
            reader.load()
        with caplog.at_level(logging.ERROR, logger="statevault"):
            assert reader.load_state() == {"n": 1}
        message = " ".join(r.getMessage() for r in caplog.records)
        assert "current state" in message
        assert "version slot 2" in message
        assert reader.last_load_source == "version 1"
        assert reader.load(fallback=True) == {"n": 1}
        info = reader.get_state_info()
        assert info["fallback"]["generation"] == 1
        assert len(info["fallback"]["skipped"]) == 2
        # The next save does not destroy the unreadable bytes.
        reader.save({"n": "recovered"})
        assert bytes(sm.store.sibling(".unreadable").read()[0]) == damaged
        assert self.manager(backend).load() == {"n": "recovered"}

    def test_a_running_writer_saves_over_bit_rot_and_keeps_it_aside(self, backend: Backend) -> None:
        sm = self.manager(backend)
        sm.save({"n": 1})
        damaged = corrupt(sm)  # not another writer: the bytes went bad under us
        assert sm.save({"n": 2}) == 2
        assert self.manager(backend).load() == {"n": 2}
        assert bytes(sm.store.sibling(".unreadable").read()[0]) == damaged

    def test_an_identical_copy_written_back_is_still_a_conflict(self, backend: Backend) -> None:
        # Generations alone cannot prove an object is ours (a delete restarts them, an
        # overwriting writer may reuse them), so any replace by someone else is a conflict.
        sm = self.manager(backend)
        sm.save({"n": 1})
        data = bytes(sm.store.read()[0])
        sm.store.write([data])
        if backend.name == "s3":
            # S3's token is the content's MD5: identical bytes are the same version there.
            assert sm.save({"n": 2}) == 2
            return
        with pytest.raises(ConflictError):
            sm.save({"n": 2})
        sm.load()
        assert sm.save({"n": 2}) == 2

    def test_a_newer_format_is_not_damage(self, backend: Backend) -> None:
        sm = self.manager(backend)
        sm.save({"n": 1})
        sm.save({"n": 2})
        newer = forge_raw(b'{"written":"by a future statevault"}', version=FORMAT_VERSION + 1)
        sm.store.write([newer])
        reader = self.manager(backend)
        assert reader.load_state() == {}  # never an older version in its place
        assert isinstance(reader.last_load_error, UnsupportedFormatError)
        with pytest.raises(UnsupportedFormatError):
            self.manager(backend).save({"n": 3})  # nor overwritten by old code
        assert bytes(sm.store.read()[0]) == newer

    def test_nothing_readable_is_an_error_not_a_fresh_start(
        self, backend: Backend, caplog: pytest.LogCaptureFixture
    ) -> None:
        sm = self.manager(backend, keep_versions=0)
        sm.save({"n": 1})
        corrupt(sm)
        with caplog.at_level(logging.INFO, logger="statevault"):
            assert sm.load_state() == {}
        assert sm.last_load_source == "failed"
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        fresh = self.manager(backend)
        assert fresh.load_state() == {}
        assert fresh.last_load_source == "failed"
        empty = StateManager(
            backend.url("never.state"), storage_options=backend.storage_options or None
        )
        assert empty.load_state() == {}
        assert empty.last_load_source == "missing"

    def test_migrations_run_in_order_and_save_only_on_the_next_save(self, backend: Backend) -> None:
        self.manager(backend).save({"price": 1.5})
        v3 = self.manager(backend, schema_version=3)

        @v3.migration(from_version=1)
        def to_2(state: dict[str, Any]) -> dict[str, Any]:
            return {"prices": [state["price"]]}

        @v3.migration(from_version=2)
        def to_3(state: dict[str, Any]) -> dict[str, Any]:
            return {**state, "count": len(state["prices"])}

        before = bytes(v3.store.read()[0])
        assert v3.load() == {"prices": [1.5], "count": 1}
        assert bytes(v3.store.read()[0]) == before  # nothing written by a load
        v3.save(v3.load())
        assert v3.get_state_info()["schema_version"] == 3
        with pytest.raises(SchemaVersionError, match="newer"):
            self.manager(backend, schema_version=2).load()

    def test_missing_or_failing_migration_names_the_step(self, backend: Backend) -> None:
        self.manager(backend).save({"a": 1})
        missing = self.manager(backend, schema_version=2)
        with pytest.raises(MigrationError, match="from_version=1"):
            missing.load()
        failing = self.manager(backend, schema_version=2)

        @failing.migration(from_version=1)
        def broken(state: dict[str, Any]) -> dict[str, Any]:
            raise KeyError("b")

        with pytest.raises(MigrationError, match="from schema version 1 to 2") as ei:
            failing.load()
        assert isinstance(ei.value.__cause__, KeyError)
        assert self.manager(backend).load() == {"a": 1}

    def test_callable_validator(self, backend: Backend) -> None:
        def positive(state: dict[str, Any]) -> bool:
            return all(v > 0 for v in state.values())

        sm = self.manager(backend, validator=positive)
        sm.save({"a": 1})
        with pytest.raises(ValidationError):
            sm.save({"a": -1})
        assert sm.save_state({"a": -1}) is False
        assert sm.load() == {"a": 1}  # nothing written
        self.manager(backend).save({"a": -5})
        with pytest.raises(ValidationError):
            self.manager(backend, validator=positive).load()

    def test_pydantic_validator_names_the_field_path(self, backend: Backend) -> None:
        class Position(pydantic.BaseModel):
            lots: float

        class State(pydantic.BaseModel):
            positions: dict[str, Position]

        sm = self.manager(backend, validator=State)
        sm.save({"positions": {"EURUSD": {"lots": 1.0}}})
        with pytest.raises(ValidationError) as ei:
            sm.save({"positions": {"EURUSD": {"lots": "many"}}})
        assert ei.value.path == "state['positions']['EURUSD']['lots']"
        assert "state['positions']['EURUSD']['lots']" in str(ei.value)
        assert sm.load() == {"positions": {"EURUSD": {"lots": 1.0}}}


class TestLocal(HistorySuite, LocalFixtures):
    pass


class TestMemory(HistorySuite, MemoryFixtures):
    pass


class TestS3(HistorySuite, S3Fixtures):
    pass


class TestGeneric(HistorySuite, GenericFixtures):
    pass


class TestAzure(HistorySuite, AzureFixtures):
    pass


class TestGCS(HistorySuite, GCSFixtures):
    pass


def test_invalid_history_and_schema_options(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="keep_versions"):
        StateManager(tmp_path / "s", keep_versions=-1)
    with pytest.raises(ValueError, match="schema_version"):
        StateManager(tmp_path / "s", schema_version=0)
    with pytest.raises(TypeError, match="validator"):
        StateManager(tmp_path / "s", validator=42)


# A sequence of operations: save a new value, damage the current object, or load.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("save"), st.integers(0, 10**6)),
        st.just(("corrupt",)),
        st.just(("load",)),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, keep=st.integers(0, 3))
def test_recovery_never_invents_a_state_nor_hides_a_readable_one(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]], keep: int
) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.state"
    # The corruptions below replace the object behind the writer's back; overwrite mode lets it
    # carry on (the plain mode would report each as a conflict, tested elsewhere).
    sm = StateManager(path, keep_versions=keep, spool_dir=False, on_conflict="overwrite")
    saved: list[int] = []  # every value ever saved, in order
    readable: list[int] = []  # values that are still stored intact (current + retained)
    for op in ops:
        if op[0] == "save":
            sm.save({"v": op[1]})
            saved.append(op[1])
            readable = [*readable, op[1]][-(keep + 1) :]
        elif op[0] == "corrupt":
            if saved and sm.state_exists():
                corrupt(sm)
                if keep == 0:  # else the retained copy of the current one is intact
                    readable = []
        else:
            got = StateManager(path, keep_versions=keep, spool_dir=False).load_state()
            if got:
                assert got["v"] in saved  # never a state that was not saved
            if readable:
                assert got  # never empty while a readable version exists
                assert got["v"] == readable[-1]  # and it is the newest readable one


def test_a_version_replaced_since_listing_is_not_retained_never_wrong(tmp_path: Any) -> None:
    sm = StateManager(tmp_path / "s.state", keep_versions=1)
    sm.save({"n": 1})
    sm.save({"n": 2})
    listed = [v["generation"] for v in sm.list_versions()]
    assert listed == [2, 1]
    other = StateManager(tmp_path / "s.state", keep_versions=1)
    other.load()
    other.save({"n": 3})  # replaces the slot of generation 1 (3 % 2 == 1 % 2)
    with pytest.raises(StateNotFoundError, match="not retained"):
        sm.load(version=1)
    assert sm.load(version=3) == {"n": 3}

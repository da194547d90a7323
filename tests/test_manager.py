"""StateManager on local files and memory://: the spec's API, the strict core, conflicts, locks."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from statevault import (
    ConflictError,
    CorruptStateError,
    NotAStateFileError,
    SerializationError,
    StateError,
    StateManager,
    StateNotFoundError,
    UnsupportedTypeError,
    generate_key,
)

from backends import Backend


class Opaque:
    """A type nobody registered."""


def sample_state() -> dict[str, Any]:
    return {
        "key": "value",
        "timestamp": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "naive": datetime(2024, 5, 1, 12, 30),
        "offset": datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5))),
        "seen": {"EURUSD", "GBPUSD"},
        "frozen": frozenset({1, 2}),
        "pair": ("EURUSD", "GBPUSD"),
        "cash": Decimal("100000.10"),
        "by_int": {1: "one", (2, 3): "tuple key"},
        "nested": [{"a": [1, 2.5, None, True]}],
    }


def test_spec_basic_usage_round_trips_exact_types(tmp_path: Path) -> None:
    sm = StateManager(tmp_path / "state.json")
    state = sample_state()
    assert sm.save_state(state) is True
    loaded = sm.load_state()
    assert loaded == state
    for k in state:
        assert type(loaded[k]) is type(state[k]), k
    assert loaded["offset"].utcoffset() == timedelta(hours=-5)
    assert loaded["naive"].tzinfo is None


def test_new_manager_in_another_instance_reads_what_was_saved(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    StateManager(path).save({"n": 1})
    assert StateManager(path).load() == {"n": 1}


def test_bytes_on_disk_are_a_frame_not_plaintext_json(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    StateManager(path, compression=None).save({"marker": "findme"})
    data = path.read_bytes()
    assert not data.lstrip().startswith(b"{")
    assert b"findme" in data  # uncompressed, unencrypted: the string is stored as is
    StateManager(path, encryption_key=generate_key()).save({"marker": "findme"})
    assert b"findme" not in path.read_bytes()


def test_missing_state_load_state_is_empty_and_logged_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sm = StateManager(tmp_path / "none.state")
    assert sm.state_exists() is False
    with caplog.at_level(logging.INFO, logger="statevault"):
        assert sm.load_state() == {}
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    with pytest.raises(StateNotFoundError):
        sm.load()


def test_state_exists_and_delete(tmp_path: Path) -> None:
    sm = StateManager(tmp_path / "s.state")
    sm.save({"a": 1})
    assert sm.state_exists()
    assert sm.delete_state() is True
    assert not sm.state_exists()
    assert sm.delete_state() is False
    sm.save({"b": 2})  # a fresh start after delete is no conflict
    assert sm.load() == {"b": 2}
    assert sm.get_state_info()["generation"] == 1


def test_get_state_info_reports_the_header(tmp_path: Path) -> None:
    sm = StateManager(tmp_path / "s.state", encryption_key=generate_key())
    info = sm.get_state_info()
    assert info["exists"] is False
    assert info["size"] == 0
    sm.save({"a": 1})
    sm.save({"a": 2})
    info = sm.get_state_info()
    assert info["exists"] is True
    assert info["readable"] is True
    assert info["size"] == (tmp_path / "s.state").stat().st_size
    assert info["generation"] == 2
    assert info["format_version"] == 2  # a delta manifest (delta=True, the default)
    assert info["transforms"] == ["zstd", "fernet"]
    assert info["encrypted"] is True
    assert info["sections"] == 1
    assert info["kind"] == "state"
    assert isinstance(info["last_modified"], datetime)
    assert info["last_modified"].tzinfo is not None
    assert abs(info["created"] - datetime.now(UTC)) < timedelta(minutes=5)


def test_info_of_a_damaged_file_says_so_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    path.write_bytes(b"garbage, not a statevault file")
    info = StateManager(path).get_state_info()
    assert info["exists"] is True
    assert info["readable"] is False
    assert "NotAStateFileError" in info["error"]


def test_unsupported_type_names_type_and_path_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.state"
    sm = StateManager(path)
    sm.save({"ok": 1})
    before = path.read_bytes()
    bad = {"pair_states": {"EURUSD-GBPUSD": {"model": Opaque()}}}
    with pytest.raises(UnsupportedTypeError) as ei:
        sm.save(bad)
    assert "Opaque" in str(ei.value)
    assert "['pair_states']['EURUSD-GBPUSD']['model']" in str(ei.value)
    assert ei.value.path.endswith("['pair_states']['EURUSD-GBPUSD']['model']")
    assert path.read_bytes() == before
    with caplog.at_level(logging.ERROR, logger="statevault"):
        assert sm.save_state(bad) is False
    assert any("Opaque" in r.getMessage() for r in caplog.records)
    assert path.read_bytes() == before
    assert sm.load() == {"ok": 1}


@pytest.mark.parametrize("state", [[1, 2], "text", None, 3])
def test_state_must_be_a_mapping(tmp_path: Path, state: Any) -> None:
    sm = StateManager(tmp_path / "s.state")
    with pytest.raises(SerializationError, match="must be a dict"):
        sm.save(state)
    assert sm.save_state(state) is False
    assert not sm.state_exists()


def test_corrupt_file_strict_raises_forgiving_logs_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.state"
    sm = StateManager(path, keep_versions=0)
    sm.save({"a": list(range(100))})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStateError):
        StateManager(path).load()
    with caplog.at_level(logging.INFO, logger="statevault"):
        assert StateManager(path, keep_versions=0).load_state() == {}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors, "an empty result caused by damage must be logged at ERROR"


def test_random_bytes_are_not_a_state_file(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    path.write_bytes(os.urandom(300))
    with pytest.raises(NotAStateFileError):
        StateManager(path).load()


def test_plain_json_from_other_code_loads_as_dict_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "legacy.json"
    doc = {"positions": {"EURUSD": {"entry_time": "2024-01-01T00:00:00+00:00", "size": 1.5}}}
    path.write_text(json.dumps(doc, indent=4))
    before = path.read_bytes()
    sm = StateManager(path)
    assert sm.load() == doc
    assert path.read_bytes() == before  # nothing changes on disk until the user saves
    sm.save(sm.load())
    assert path.read_bytes()[:1] != b"{"
    assert StateManager(path).load() == doc


def test_new_files_are_private_and_parents_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.state"
    StateManager(path).save({"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_memory_url_round_trip(memory_backend: Backend) -> None:
    url = memory_backend.url("s.state")
    StateManager(url).save(sample_state())
    assert StateManager(url).load() == sample_state()


def test_stale_writer_gets_conflict_and_first_writer_survives(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    a, b = StateManager(path), StateManager(path)
    a.save({"who": "a", "n": 0})
    assert b.load() == {"who": "a", "n": 0}
    a.save({"who": "a", "n": 1})
    with pytest.raises(ConflictError) as ei:
        b.save({"who": "b"})
    assert ei.value.expected == 1
    assert ei.value.found == 2
    assert "generation" in str(ei.value)
    assert b.save_state({"who": "b"}) is False
    assert StateManager(path).load() == {"who": "a", "n": 1}
    # After loading again, b may save.
    b.load()
    b.save({"who": "b"})
    assert a.load() == {"who": "b"}


def test_writer_that_saw_nothing_conflicts_with_a_state_created_since(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    b = StateManager(path)
    assert b.load_state() == {}  # b has seen "no state"
    StateManager(path).save({"who": "a"})
    with pytest.raises(ConflictError):
        b.save({"who": "b"})
    assert StateManager(path).load() == {"who": "a"}


def test_overwrite_mode_wins_and_logs_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.state"
    a, b = StateManager(path), StateManager(path, on_conflict="overwrite")
    a.save({"who": "a"})
    b.load()
    a.save({"who": "a2"})
    with caplog.at_level(logging.WARNING, logger="statevault"):
        b.save({"who": "b"})
    assert StateManager(path).load() == {"who": "b"}
    assert any(
        r.levelno == logging.WARNING and "overwriting" in r.getMessage() for r in caplog.records
    )


def test_fresh_manager_continues_the_generation_count(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    StateManager(path).save({"n": 1})
    StateManager(path).save({"n": 2})
    assert StateManager(path).get_state_info()["generation"] == 2


def test_threads_share_a_caller_lock(tmp_path: Path) -> None:
    lock = threading.Lock()  # the spec's example: a plain Lock shared with other components
    sm = StateManager(tmp_path / "s.state", lock)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(20):
                assert sm.save_state({"thread": i, "j": j})
                got = sm.load_state()
                assert set(got) == {"thread", "j"}
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sm.get_state_info()["generation"] == 80
    with lock:  # the lock is free again: nothing leaked it
        pass


def test_invalid_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression"):
        StateManager(tmp_path / "s", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_conflict"):
        StateManager(tmp_path / "s", on_conflict="merge")  # type: ignore[arg-type]


def test_compression_off_reads_compressed_and_back(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    StateManager(path, compression="zstd").save({"x": "y" * 1000})
    plain = StateManager(path, compression=None)
    assert plain.load() == {"x": "y" * 1000}
    plain.save({"x": "z" * 1000})
    assert plain.get_state_info()["transforms"] == []
    assert StateManager(path).load() == {"x": "z" * 1000}


def test_registered_type_is_per_manager(tmp_path: Path) -> None:
    class Point:
        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

        def __hash__(self) -> int:
            return hash((self.x, self.y))

    path = tmp_path / "s.state"
    sm = StateManager(path)
    sm.register_type(Point, "Point", encode=lambda p: [p.x, p.y], decode=lambda v: Point(*v))
    sm.save({"p": Point(1, 2)})
    assert StateManager(path).load_state() == {}  # no decoder there: logged, empty
    other = StateManager(path)
    with pytest.raises(StateError, match="Point"):
        other.load()
    with pytest.raises(UnsupportedTypeError):
        other.save({"p": Point(1, 2)})
    assert sm.load() == {"p": Point(1, 2)}


def test_spec_custom_serializer_example(tmp_path: Path) -> None:
    class MyCustomClass:
        def __init__(self, value: int) -> None:
            self.value = value

        def to_dict(self) -> dict[str, int]:
            return {"value": self.value}

        @classmethod
        def from_dict(cls, d: dict[str, int]) -> MyCustomClass:
            return cls(d["value"])

    def custom_serializer(obj: Any) -> Any:
        if isinstance(obj, MyCustomClass):
            return {"type": "MyCustomClass", "data": obj.to_dict()}
        return obj

    def custom_deserializer(obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("type") == "MyCustomClass":
            return MyCustomClass.from_dict(obj["data"])
        return obj

    state_manager = StateManager(tmp_path / "s.state")
    state_manager.register_serializer("custom", custom_serializer)
    state_manager.register_deserializer("custom", custom_deserializer)
    assert state_manager.save_state({"obj": MyCustomClass(7)})
    loaded = state_manager.load_state()
    assert isinstance(loaded["obj"], MyCustomClass)
    assert loaded["obj"].value == 7


def test_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv("STATEVAULT_URL", str(tmp_path / "env.state"))
    monkeypatch.setenv("STATEVAULT_STORAGE_OPTIONS", "{}")
    monkeypatch.setenv("STATEVAULT_KEY", key)
    sm = StateManager.from_env()
    sm.save({"a": 1})
    assert sm.get_state_info()["encrypted"] is True
    assert StateManager(tmp_path / "env.state", encryption_key=key).load() == {"a": 1}


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        (None, None, "STATEVAULT_URL is not set"),
        ("x.state", "{not json", "not valid JSON"),
        ("x.state", "[1]", "must be a JSON object"),
    ],
)
def test_from_env_errors(
    monkeypatch: pytest.MonkeyPatch, url: str | None, options: str | None, message: str
) -> None:
    monkeypatch.delenv("STATEVAULT_URL", raising=False)
    if url is not None:
        monkeypatch.setenv("STATEVAULT_URL", url)
    if options is not None:
        monkeypatch.setenv("STATEVAULT_STORAGE_OPTIONS", options)
    with pytest.raises(StateError, match=message):
        StateManager.from_env()


def test_rotate_keys_re_encrypts_with_the_newest_key(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "s.state"
    StateManager(path, encryption_key=old).save({"secret": 42})
    StateManager(path, encryption_key=[new, old]).rotate_keys()
    assert StateManager(path, encryption_key=new).load() == {"secret": 42}
    with pytest.raises(StateError):
        StateManager(path, encryption_key=old).load()


def test_rotate_keys_re_encrypts_history_and_spool_too(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "s.state"
    sm = StateManager(path, encryption_key=old, keep_versions=3)
    for n in range(3):
        sm.save({"n": n})
    rotated = StateManager(path, encryption_key=[new, old], keep_versions=3)
    assert rotated.rotate_keys() == 4
    only_new = StateManager(path, encryption_key=new, keep_versions=3)
    assert [v["generation"] for v in only_new.list_versions()] == [4, 3, 2, 1]
    for generation, n in [(1, 0), (2, 1), (3, 2), (4, 2)]:
        assert only_new.load(version=generation) == {"n": n}
    with pytest.raises(StateError):
        StateManager(path, encryption_key=old).load(version=2)


def test_rotate_keys_needs_a_key(tmp_path: Path) -> None:
    sm = StateManager(tmp_path / "s.state")
    with pytest.raises(StateError, match="encryption_key"):
        sm.rotate_keys()


def test_keys_never_appear_in_repr_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = generate_key()
    path = tmp_path / "s.state"
    sm = StateManager(path, encryption_key=key)
    sm.save({"a": 1})
    assert key not in repr(sm)
    with caplog.at_level(logging.DEBUG, logger="statevault"):
        StateManager(path, encryption_key=generate_key()).load_state()
        StateManager(path).load_state()
    assert caplog.records
    for record in caplog.records:
        assert key not in record.getMessage()
        assert key not in str(record.exc_info)


def test_headers_larger_than_the_first_probe_are_read_in_full(tmp_path: Path) -> None:
    # 3,000 sections make a header of well over 64 KiB, more than the first ranged read.
    from statevault import TradingStateManager

    path = tmp_path / "wide.state"
    pairs = {f"P{i:04d}": {"x": i} for i in range(3000)}
    TradingStateManager(path).save_trading({}, pairs, {"peak": 1.0})
    fresh = TradingStateManager(path)
    assert fresh.get_state_info()["sections"] == 3001
    assert fresh.get_portfolio_summary()["portfolio"] == {"peak": 1.0}
    assert TradingStateManager(path).save_trading({}, pairs, {"peak": 2.0}) == 2
    assert StateManager(path).load()["pair_states"]["P2999"] == {"x": 2999}


def test_a_user_transform_registered_by_name_stacks_between_zstd_and_fernet(
    tmp_path: Path,
) -> None:
    from statevault import Transform, UnknownTransformError

    def flip(data: Any) -> bytes:
        return bytes(b ^ 0xA5 for b in bytes(data))

    path = tmp_path / "s.state"
    key = generate_key()
    writer = StateManager(path, encryption_key=key, transforms=["xor"])
    writer.register_transform("xor", Transform("xor", flip, flip))
    writer.save({"a": "b" * 100})
    assert writer.get_state_info()["transforms"] == ["zstd", "xor", "fernet"]
    reader = StateManager(path, encryption_key=key)
    with pytest.raises(UnknownTransformError, match="xor"):
        reader.load()
    reader.register_transform("xor", Transform("xor", flip, flip))
    assert reader.load() == {"a": "b" * 100}


def test_a_callers_plain_lock_never_deadlocks_the_managers_own_nesting(tmp_path: Path) -> None:
    # restore() saves and rotate_keys() loads and saves, all under the manager's lock.
    lock = threading.Lock()
    old, new = generate_key(), generate_key()
    sm = StateManager(tmp_path / "s.state", lock, encryption_key=[new, old])
    done: list[int] = []

    def work() -> None:
        sm.save({"n": 1})
        sm.save({"n": 2})
        done.append(sm.restore(1))
        done.append(sm.rotate_keys())

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done == [3, 4]
    with lock:  # released at the end
        pass


def test_a_save_that_landed_but_reported_failure_does_not_block_later_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the replace (here: the directory fsync) must not leave the manager
    conflicting with its own write forever."""
    from statevault.storage import local

    path = tmp_path / "s.state"
    sm = StateManager(path, spool_dir=tmp_path / "spool")
    sm.save({"n": 1})
    real = local._fsync_dir
    calls = {"n": 0}

    def failing_once(directory: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(5, "injected I/O error after the rename")
        real(directory)

    monkeypatch.setattr(local, "_fsync_dir", failing_once)
    assert sm.save_state({"n": 2}) is False  # reported as failed (and spooled) ...
    assert StateManager(path, spool_dir=False).load() == {"n": 2}  # ... but it landed
    assert sm.save({"n": 3}) == 3  # and the manager carries on
    assert StateManager(path, spool_dir=False).load() == {"n": 3}


def test_a_bad_compression_level_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        StateManager(tmp_path / "s.state", compression_level=99)

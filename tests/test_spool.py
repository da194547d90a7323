"""The failover spool, with faults injected into a real local filesystem (no mocks of our parts).

``faulty://`` is fsspec's real LocalFileSystem with a switch that makes every call fail the way
a dead network share or endpoint does; statevault reaches it through its generic fsspec store.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem

from statevault import StateManager, StorageError, generate_key


class FaultyFileSystem(LocalFileSystem):
    """The local filesystem, but every operation raises ``ConnectionError`` while ``down``."""

    protocol = "faulty"
    root_marker = "/"
    down: ClassVar[bool] = False
    error: ClassVar[type[OSError]] = ConnectionRefusedError

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        path = str(path)
        if path.startswith("faulty://"):
            path = path[len("faulty://") :]
        return str(super()._strip_protocol(path))

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if (
            FaultyFileSystem.down
            and callable(attr)
            and not name.startswith("_")
            and name not in {"unstrip_protocol", "fsid"}
        ):

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise FaultyFileSystem.error(f"injected fault in {name}")

            return fail
        return attr


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[str]:
    fsspec.register_implementation("faulty", FaultyFileSystem, clobber=True)
    FaultyFileSystem.down = False
    FaultyFileSystem.error = ConnectionRefusedError
    (tmp_path / "primary").mkdir()
    yield f"faulty://{tmp_path}/primary/s.state"
    FaultyFileSystem.down = False


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def primary_state(url: str) -> dict[str, Any]:
    return StateManager(url, spool_dir=False).load()


def test_failed_save_goes_to_the_spool_and_the_next_save_pushes(
    faulty: str, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sm = StateManager(faulty, spool_dir=spool_dir)
    assert sm.save_state({"n": 1})
    FaultyFileSystem.down = True
    with caplog.at_level(logging.ERROR, logger="statevault"):
        assert sm.save_state({"n": 2}) is False
    assert any(str(spool_dir) in r.getMessage() for r in caplog.records)
    assert sm.save_state({"n": 3}) is False
    info = sm.get_state_info()
    assert info["unflushed"] is True
    assert info["spool"]["generation"] == 3
    assert info["exists"] is None
    assert "error" in info
    # While the primary is down, a load returns the spooled (newest) state and says so.
    assert sm.load_state() == {"n": 3}
    assert sm.last_load_source == "spool"
    FaultyFileSystem.down = False
    assert primary_state(faulty) == {"n": 1}
    assert sm.load() == {"n": 3}  # spool still newer than the primary
    assert sm.last_load_source == "spool"
    assert sm.save_state({"n": 4})
    assert primary_state(faulty) == {"n": 4}
    assert sm.get_state_info()["unflushed"] is False
    assert sm.get_state_info()["generation"] == 4
    assert not list(spool_dir.glob("*.state"))


def test_strict_save_raises_a_storage_error_naming_the_spool(faulty: str, spool_dir: Path) -> None:
    sm = StateManager(faulty, spool_dir=spool_dir)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    with pytest.raises(StorageError, match="local spool") as ei:
        sm.save({"n": 2})
    assert isinstance(ei.value.__cause__, StorageError)


def test_flush_spool_pushes_without_a_new_save(faulty: str, spool_dir: Path) -> None:
    sm = StateManager(faulty, spool_dir=spool_dir)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    assert not sm.save_state({"n": 2})
    with pytest.raises(StorageError):
        sm.flush_spool()
    FaultyFileSystem.down = False
    assert sm.flush_spool() is True
    assert primary_state(faulty) == {"n": 2}
    assert sm.flush_spool() is False
    sm.save({"n": 3})  # the manager continues from the pushed generation without conflict
    assert StateManager(faulty, spool_dir=False).get_state_info()["generation"] == 3


def test_a_restarted_process_finds_the_spool(faulty: str, spool_dir: Path) -> None:
    first = StateManager(faulty, spool_dir=spool_dir)
    first.save({"n": 1})
    FaultyFileSystem.down = True
    assert not first.save_state({"n": 2})
    FaultyFileSystem.down = False
    restarted = StateManager(faulty, spool_dir=spool_dir)
    assert restarted.load_state() == {"n": 2}
    assert restarted.save_state({"n": 3})
    assert primary_state(faulty) == {"n": 3}


def test_first_save_while_down_is_spooled(faulty: str, spool_dir: Path) -> None:
    FaultyFileSystem.down = True
    sm = StateManager(faulty, spool_dir=spool_dir)
    assert sm.save_state({"n": 1}) is False
    assert sm.load_state() == {"n": 1}
    FaultyFileSystem.down = False
    assert sm.flush_spool() is True
    assert primary_state(faulty) == {"n": 1}


def test_a_stale_spool_is_dropped(faulty: str, spool_dir: Path) -> None:
    sm = StateManager(faulty, spool_dir=spool_dir)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    assert not sm.save_state({"n": 2})  # spooled as generation 2
    FaultyFileSystem.down = False
    other = StateManager(faulty, spool_dir=False)
    other.load()
    other.save({"n": "other-2"})
    other.save({"n": "other-3"})  # the primary moved on to generation 3
    fresh = StateManager(faulty, spool_dir=spool_dir)
    assert fresh.load() == {"n": "other-3"}  # primary newer than the spool
    assert fresh.last_load_source == "primary"
    assert fresh.flush_spool() is False
    assert not list(spool_dir.glob("*.state"))


def test_spool_off_loses_nothing_stored_but_keeps_nothing(faulty: str, spool_dir: Path) -> None:
    sm = StateManager(faulty, spool_dir=False)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    assert sm.save_state({"n": 2}) is False
    assert sm.flush_spool() is False
    FaultyFileSystem.down = False
    assert primary_state(faulty) == {"n": 1}
    assert not spool_dir.exists()


def test_unreadable_spool_is_ignored_loudly(
    faulty: str, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sm = StateManager(faulty, spool_dir=spool_dir)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    assert not sm.save_state({"n": 2})
    FaultyFileSystem.down = False
    (spool_file,) = spool_dir.glob("*.state")
    spool_file.write_bytes(b"damaged")
    with caplog.at_level(logging.ERROR, logger="statevault"):
        assert StateManager(faulty, spool_dir=spool_dir).load() == {"n": 1}
    assert any("spooled state" in r.getMessage() for r in caplog.records)


def test_spool_is_encrypted_like_the_primary(faulty: str, spool_dir: Path) -> None:
    key = generate_key()
    sm = StateManager(faulty, spool_dir=spool_dir, encryption_key=key)
    sm.save({"secret": "PLAINTEXT-MARKER"})
    FaultyFileSystem.down = True
    assert not sm.save_state({"secret": "PLAINTEXT-MARKER-2"})
    (spool_file,) = spool_dir.glob("*.state")
    assert b"PLAINTEXT-MARKER" not in spool_file.read_bytes()
    assert spool_file.with_suffix(".url").read_text().strip() == sm.url


def test_rotate_keys_pushes_the_spool_with_the_new_key(faulty: str, spool_dir: Path) -> None:
    old, new = generate_key(), generate_key()
    sm = StateManager(faulty, spool_dir=spool_dir, encryption_key=old, keep_versions=0)
    sm.save({"n": 1})
    FaultyFileSystem.down = True
    assert not sm.save_state({"n": 2})  # spooled, encrypted with the old key
    FaultyFileSystem.down = False
    # Rotation saves the newest state (the spooled one) and re-encrypts what is left.
    rotated = StateManager(faulty, spool_dir=spool_dir, encryption_key=[new, old])
    assert rotated.rotate_keys() == 3
    assert StateManager(faulty, spool_dir=spool_dir, encryption_key=new).load() == {"n": 2}
    assert rotated.get_state_info()["unflushed"] is False

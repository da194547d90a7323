"""The local store's portable path, on Linux: the Windows branches forced where meaningful.

``statevault.storage.local.WINDOWS`` selects the Windows behaviour (replace retried while a
reader holds the file, no directory fsync, no chmod, no ``os.pread``). These tests set it on
Linux and run the whole store and manager suites through those branches, make ``os.replace``
fail the way Windows does, and race processes with the flag set. What this cannot show (real
sharing violations, ``msvcrt`` locking, NTFS durability) is listed in docs/storage.md.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import filelock
import pytest

from statevault import StateManager
from statevault.errors import StorageError, StoragePermissionError
from statevault.storage import local, open_store
from test_backends_manager import ManagerSuite
from test_storage import StoreSuite

from backends import Backend, LocalFixtures


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "WINDOWS", True)


class WindowsBranches(LocalFixtures):
    @pytest.fixture(autouse=True)
    def _windows(self, windows: None) -> None:
        assert local.WINDOWS


class TestStoreSuiteWindowsBranches(StoreSuite, WindowsBranches):
    pass


class TestManagerSuiteWindowsBranches(ManagerSuite, WindowsBranches):
    pass


class _FlakyReplace:
    """``os.replace`` that fails like Windows while a reader holds the target open."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self._real = os.replace

    def __call__(self, src: Any, dst: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise PermissionError(13, "The process cannot access the file", str(dst))
        self._real(src, dst)


def _temps(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name]


def test_replace_blocked_by_a_reader_is_retried(
    local_backend: Backend, windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_backend.open()
    first = store.write([b"old"])
    flaky = _FlakyReplace(failures=3)
    monkeypatch.setattr(local.time, "sleep", lambda _s: None)
    monkeypatch.setattr(local.os, "replace", flaky)
    written = store.write([b"new"], expect=first.token)
    assert flaky.calls == 4
    assert bytes(store.read()[0]) == b"new"
    assert store.info() == written
    assert _temps(Path(store.path).parent) == []


def test_a_reader_that_never_lets_go_fails_clearly_and_keeps_the_old_state(
    local_backend: Backend, windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_backend.open()
    store.write([b"old"])
    sleeps: list[float] = []
    monkeypatch.setattr(local.time, "sleep", sleeps.append)
    monkeypatch.setattr(local.os, "replace", _FlakyReplace(failures=10**6))
    with pytest.raises(StorageError, match="another program keeps it open") as caught:
        store.write([b"new"])
    assert isinstance(caught.value.__cause__, PermissionError)
    assert len(sleeps) == local.REPLACE_ATTEMPTS - 1
    assert max(sleeps) <= 0.25
    assert sum(sleeps) < 3  # bounded: about 2 s in all
    monkeypatch.undo()
    assert bytes(store.read()[0]) == b"old"
    assert _temps(Path(store.path).parent) == []


def test_on_posix_a_permission_error_is_not_retried(
    local_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert local.WINDOWS is (sys.platform == "win32")
    store = local_backend.open()
    store.write([b"old"])
    flaky = _FlakyReplace(failures=1)
    monkeypatch.setattr(local.os, "replace", flaky)
    with pytest.raises(StoragePermissionError):
        store.write([b"new"])
    assert flaky.calls == 1


def test_windows_branches_skip_directory_fsync_and_chmod(
    local_backend: Backend, windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_backend.open()
    store.write([b"v1"])
    os.chmod(store.path, 0o640)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_IFMT(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(local.os, "fsync", fsync)
    store.write([b"v2"])
    assert synced == [stat.S_IFREG]  # the temp file, never the directory
    # Windows has no permission bits to carry over: the new file keeps the creation mode.
    assert stat.S_IMODE(os.stat(store.path).st_mode) == local.NEW_FILE_MODE


def test_posix_branches_fsync_the_directory_and_keep_the_mode(
    local_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = local_backend.open()
    store.write([b"v1"])
    os.chmod(store.path, 0o640)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_IFMT(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(local.os, "fsync", fsync)
    store.write([b"v2"])
    assert synced == [stat.S_IFREG, stat.S_IFDIR]
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o640


HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from statevault.storage import open_store
    store = open_store(sys.argv[1])
    with store.lock():
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def test_the_lock_excludes_another_process(local_backend: Backend) -> None:
    """The lock a store takes is an OS lock another process (and filelock itself) sees."""
    store = local_backend.open()
    store.write([b"x"])
    lock_path = os.path.join(os.path.dirname(store.path), f".{os.path.basename(store.path)}.lock")
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store.path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(lock_path, thread_local=False).acquire(timeout=0.2)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
    finally:
        child.communicate(timeout=60)
    with filelock.FileLock(lock_path, thread_local=False).acquire(timeout=30):
        pass
    assert os.path.exists(lock_path)  # kept: deleting lock files races


RACER = textwrap.dedent(
    """
    import json, sys
    import statevault.storage.local as local
    local.WINDOWS = sys.argv[4] == "1"
    from statevault import ConflictError, StateManager
    path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sm = StateManager(path, compression=None)
    acked = []
    while len(acked) < n:
        entries = sm.load_state().get("entries", [])
        try:
            sm.save({"entries": [*entries, f"{me}-{len(acked)}"]})
        except ConflictError:
            continue
        acked.append(f"{me}-{len(acked)}")
    print(json.dumps(acked))
    """
)


def test_processes_racing_with_the_windows_branches_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "race.state"
    StateManager(path).save({"entries": []})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), f"p{i}", "10", "1"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    acked: list[str] = []
    deadline = time.monotonic() + 120
    for proc in procs:
        out, _ = proc.communicate(timeout=max(1, deadline - time.monotonic()))
        assert proc.returncode == 0
        acked += json.loads(out)
    final = StateManager(path).load()["entries"]
    assert sorted(final) == sorted(acked)
    assert len(final) == 30


def test_open_store_needs_no_posix_only_module(tmp_path: Path) -> None:
    """Importing and using the local store never imports fcntl off macOS (absent on Windows)."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["fcntl"] = None  # as on Windows: importing it fails
        import statevault.storage.local as local
        local.WINDOWS = True
        from statevault.storage import open_store
        store = open_store({str(tmp_path / "s.bin")!r})
        store.write([b"hello"])
        assert bytes(store.read()[0]) == b"hello"
        with store.lock():
            store.write([b"again"], expect=store.info().token)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert bytes(open_store(tmp_path / "s.bin").read()[0]) == b"again"

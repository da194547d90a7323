"""LocalStore specifics: file modes, temp files, crashes, fsync, and real multi-process races."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from statevault import StateManager
from statevault.errors import (
    ConfigurationError,
    StateNotFoundError,
    StorageConfigurationError,
    StorageError,
    StoragePermissionError,
    StorageUnavailableError,
)
from statevault.storage import open_store
from statevault.storage.local import LocalStore

CHILD_TIMEOUT = 120


def _python(script: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start a child Python running ``script`` (it can import statevault like we do)."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(script), *args], text=True, **kwargs
    )


def _temps(directory: Path, name: str = "state.bin") -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(f".{name}.tmp-"))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "er" / "state.bin"


# -- files on disk ------------------------------------------------------------------------


def test_new_file_is_0600_and_parents_are_created_0700(path: Path) -> None:
    store = open_store(path)
    store.write([b"secret state"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == b"secret state"


def test_existing_file_keeps_its_mode(path: Path) -> None:
    store = open_store(path)
    store.write([b"one"])
    path.chmod(0o640)
    store.write([b"two"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"two"


def test_bytes_on_disk_equal_the_chunks(path: Path) -> None:
    chunks = [os.urandom(n) for n in (0, 1, 4095, 4096, 4097, 1 << 20)]
    info = open_store(path).write([memoryview(c) for c in chunks])
    assert path.read_bytes() == b"".join(chunks)
    assert info.size == path.stat().st_size


def test_lock_file_is_kept_and_no_temp_files_remain(path: Path) -> None:
    store = open_store(path)
    store.write([b"a"])
    store.write([b"b"])
    lock = path.parent / ".state.bin.lock"
    assert lock.exists()
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert _temps(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == [".state.bin.lock", "state.bin"]


def test_read_returns_a_writable_bytearray(path: Path) -> None:
    values = np.arange(16, dtype=np.int64)
    store = open_store(path)
    store.write([memoryview(values)])
    data, info = store.read()
    assert isinstance(data, bytearray)
    array = np.frombuffer(data, dtype=np.int64)
    assert array.flags.writeable
    assert (array == values).all()
    assert info.size == values.nbytes


def test_directory_is_fsynced_after_the_rename(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    open_store(path).write([b"durable"])
    assert synced == ["file", "dir"]


def test_directory_fsync_unsupported_is_tolerated(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some filesystems answer EINVAL to a directory fsync; the save still counts."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    open_store(path).write([b"ok"])
    assert path.read_bytes() == b"ok"


def test_directory_fsync_io_error_is_a_storage_error(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageError, match="Storage failed while saving") as caught:
        open_store(path).write([b"x"])
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.EIO


# -- temp files of dead writers -----------------------------------------------------------

STALLING_WRITER = """
    import sys, time
    from collections.abc import Sequence
    from statevault.storage import open_store

    class Stalling(Sequence):
        # The second chunk never comes: the first is on disk in the temp file.
        def __len__(self):
            return 2
        def __getitem__(self, i):
            if i == 0:
                return b"N" * 100_000
            if i == 1:
                print("half-written", flush=True)
                time.sleep(600)
            raise IndexError(i)

    open_store(sys.argv[1]).write(Stalling())
"""


def test_temp_file_of_a_killed_writer_is_removed_by_the_next_write(path: Path) -> None:
    store = open_store(path)
    store.write([b"old state"])
    child = _python(STALLING_WRITER, str(path), stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "half-written"
        temps = _temps(path.parent)
        assert len(temps) == 1
        assert temps[0].stat().st_size == 100_000
        assert bytes(store.read()[0]) == b"old state"  # readers never see the half file
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(CHILD_TIMEOUT)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(_temps(path.parent)) == 1  # still there: nobody cleaned up yet

    store.write([b"new state"])  # the dead writer's flock is gone with its process
    assert _temps(path.parent) == []
    assert path.read_bytes() == b"new state"


def test_cleanup_only_removes_this_states_temp_files(path: Path) -> None:
    store = open_store(path)
    store.write([b"x"])
    dead = path.parent / ".state.bin.tmp-123-0123456789abcdef"
    keep = [
        path.parent / ".state.bin.history.tmp-1-0123456789abcdef",  # a sibling's writer
        path.parent / ".state.bin.tmp-notours",
        path.parent / "state.bin.tmp-1-0123456789abcdef",
    ]
    for p in [dead, *keep]:
        p.write_bytes(b"junk")
    store.write([b"y"])
    assert not dead.exists()
    assert all(p.exists() for p in keep)


def test_failing_chunk_source_leaves_old_state_and_no_temp(path: Path) -> None:
    store = open_store(path)
    store.write([b"old"])

    class Broken(Sequence[bytes]):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
            if i == 0:
                return b"partial"
            raise RuntimeError("encoder failed")

    with pytest.raises(RuntimeError, match="encoder failed"):
        store.write(Broken())
    assert path.read_bytes() == b"old"
    assert _temps(path.parent) == []


# -- real processes -----------------------------------------------------------------------

WRITER = """
    import sys
    from statevault.storage import open_store

    path, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(path)
    for i in range(count):
        unit = f"{tag}{i:07d}".encode()  # 8 bytes
        # Several chunks per write, sizes differ per writer: a torn or mixed file shows.
        n = 20_000 if tag == "A" else 33_000
        store.write([unit * (n // 2), unit * (n - n // 2)])
"""

READER = """
    import os, sys
    from statevault.errors import StateNotFoundError
    from statevault.storage import open_store

    path, done = sys.argv[1], sys.argv[2]
    store = open_store(path)
    sizes = {b"A": 20_000 * 8, b"B": 33_000 * 8}
    reads = 0
    print("ready", flush=True)
    while not os.path.exists(done):
        try:
            data, info = store.read()
        except StateNotFoundError:
            continue
        unit = bytes(data[:8])
        ok = (
            unit[:1] in sizes
            and len(data) == sizes[unit[:1]] == info.size
            and data == unit * (len(data) // 8)
        )
        if not ok:
            print(f"BAD read of {len(data)} bytes starting {bytes(data[:16])!r}", flush=True)
            sys.exit(1)
        reads += 1
    print(f"reads {reads}", flush=True)
"""


def test_concurrent_writer_processes_never_tear_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.bin"
    done = tmp_path / "done"
    reader = _python(READER, str(path), str(done), stdout=subprocess.PIPE)
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        writers = [_python(WRITER, str(path), tag, "120") for tag in "AB"]
        for w in writers:
            assert w.wait(CHILD_TIMEOUT) == 0
    finally:
        done.touch()
        out, _ = reader.communicate(timeout=CHILD_TIMEOUT)
    assert reader.returncode == 0, out
    assert int(out.split()[-1]) > 0
    assert _temps(tmp_path) == []
    data = path.read_bytes()
    assert data[:1] in (b"A", b"B")
    assert data == data[:8] * (len(data) // 8)


INCREMENTER = """
    import sys
    from statevault.errors import ConflictError
    from statevault.storage import open_store

    store = open_store(sys.argv[1])
    done = conflicts = 0
    while done < int(sys.argv[2]):
        data, info = store.read()
        try:
            store.write([str(int(bytes(data)) + 1).encode()], expect=info.token)
        except ConflictError:
            conflicts += 1
            continue
        done += 1
    print(conflicts)
"""


def test_compare_and_swap_across_processes_loses_no_update(tmp_path: Path) -> None:
    path = tmp_path / "counter"
    open_store(path).write([b"0"])
    children = [_python(INCREMENTER, str(path), "60", stdout=subprocess.PIPE) for _ in range(3)]
    for child in children:
        out, _ = child.communicate(timeout=CHILD_TIMEOUT)
        assert child.returncode == 0
        int(out)  # number of conflicts seen and retried
    assert path.read_bytes() == b"180"


LOCK_HOLDER = """
    import sys
    from statevault.storage import open_store

    store = open_store(sys.argv[1])
    with store.lock():
        print("locked", flush=True)
        sys.stdin.readline()
        store.write([b"child"])
"""


def test_lock_excludes_other_processes(path: Path) -> None:
    store = open_store(path)
    store.write([b"start"])
    child = _python(LOCK_HOLDER, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    finished = threading.Event()

    def write() -> None:
        store.write([b"parent"])
        finished.set()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(0.3)
    blocked = not finished.is_set()
    child.stdin.write("go\n")
    child.stdin.flush()
    child.communicate(timeout=CHILD_TIMEOUT)
    thread.join()
    assert child.returncode == 0
    assert blocked
    assert path.read_bytes() == b"parent"  # written after the child released the lock


# -- paths --------------------------------------------------------------------------------


def test_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path(os.path.realpath(tmp_path))
    assert open_store(f"file://{tmp_path}/a.state").url == str(real / "a.state")
    assert open_store(tmp_path / "b.state").url == str(real / "b.state")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_store("~/c.state").url == str(real / "c.state")
    monkeypatch.chdir(tmp_path)
    store = open_store("rel/d.state")
    assert isinstance(store, LocalStore)
    assert store.url == str(real / "rel" / "d.state")
    assert store.protocol == "file"
    store.write([b"relative"])
    assert (tmp_path / "rel" / "d.state").read_bytes() == b"relative"


def test_symlinked_state_replaces_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    target = tmp_path / "real" / "state.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    store = open_store(link)
    assert store.url == os.path.realpath(target)
    store.write([b"new"])
    assert link.is_symlink()
    assert target.read_bytes() == b"new"


def test_storage_options_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no meaning for a local path"):
        open_store(tmp_path / "x", {"anon": True})


def test_storage_options_on_a_local_path_are_a_configuration_error(tmp_path: Path) -> None:
    """Typed (never spooled), saying what to do; still a ValueError for older callers."""
    with pytest.raises(StorageConfigurationError, match="remove them") as caught:
        open_store(tmp_path / "x", {"anon": True})
    assert isinstance(caught.value, ConfigurationError)
    assert "['anon']" in str(caught.value)
    with pytest.raises(StorageConfigurationError, match="no meaning for a local path"):
        StateManager(tmp_path / "y.state", storage_options={"anon": True})
    assert not (tmp_path / "y.state").exists()


def test_delete_in_missing_directory_creates_nothing(tmp_path: Path) -> None:
    assert open_store(tmp_path / "nope" / "state.bin").delete() is False
    assert not (tmp_path / "nope").exists()


def test_lock_creates_the_directory(path: Path) -> None:
    with open_store(path).lock():
        assert (path.parent / ".state.bin.lock").exists()


# -- failures -----------------------------------------------------------------------------


@contextlib.contextmanager
def _unwritable(directory: Path) -> Iterator[None]:
    """Make ``directory`` refuse new files, for root too (chattr +i) if we are root."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr: cannot make a directory unwritable")
    if subprocess.run([chattr, "+i", str(directory)], check=False, capture_output=True).returncode:
        pytest.skip("this filesystem does not support chattr +i")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def test_write_into_unwritable_directory_is_a_permission_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    store = open_store(directory / "state.bin")
    denied = pytest.raises(StoragePermissionError, match="Access denied while saving")
    with _unwritable(directory), denied as caught:
        store.write([b"x"])
    assert isinstance(caught.value.__cause__, PermissionError)
    assert str(directory) in str(caught.value)
    assert list(directory.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_permission_error(path: Path) -> None:
    store = open_store(path)
    store.write([b"x"])
    path.chmod(0)
    try:
        with pytest.raises(StoragePermissionError):
            store.read()
        with pytest.raises(StoragePermissionError):
            store.info()
    finally:
        path.chmod(0o600)


def test_parent_that_is_a_file_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_bytes(b"")
    store = open_store(blocker / "state.bin")
    with pytest.raises(StorageError) as caught:
        store.write([b"x"])
    assert type(caught.value) is StorageError
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(StorageError) as caught_read:
        store.read()
    assert not isinstance(caught_read.value, StateNotFoundError | StorageUnavailableError)


def test_directory_at_the_state_path(tmp_path: Path) -> None:
    target = tmp_path / "adir"
    target.mkdir()
    store = open_store(target)
    with pytest.raises(StorageError):
        store.read()
    with pytest.raises(StorageError):
        store.read_range(0, 1)
    with pytest.raises(StorageError):
        store.write([b"x"])
    assert _temps(tmp_path, "adir") == []


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_file_changing_under_the_reader_is_reported() -> None:
    """/proc files stat as empty but have content: exactly what an in-place writer looks like."""
    with pytest.raises(StorageError, match="kept changing while being read"):
        open_store("/proc/self/status").read()


def test_disk_full_is_a_storage_error_and_keeps_the_old_state(tmp_path: Path) -> None:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        check=False,
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        store = open_store(mount_point / "state.bin")
        store.write([b"old state"])
        with pytest.raises(StorageError, match="No space left while saving") as caught:
            store.write([b"x" * 200_000])
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.__cause__.errno == errno.ENOSPC
        assert bytes(store.read()[0]) == b"old state"
        assert _temps(mount_point) == []
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_keep_copy_hard_links_and_checks_it_links_what_was_written(tmp_path: Path) -> None:
    from statevault.storage import open_store

    head = open_store(str(tmp_path / "s.state"))
    slot = head.sibling(".versions/0")
    written = head.write([b"A" * 5000])
    head.keep_copy(slot, [b"A" * 5000], written)
    assert os.stat(tmp_path / "s.state").st_ino == os.stat(tmp_path / "s.state.versions/0").st_ino
    # Replaced by someone else before the link: the link would show their bytes, so the
    # bytes given are written instead.
    stale = head.write([b"B" * 5000])
    head.write([b"C" * 5000])
    head.keep_copy(slot, [b"B" * 5000], stale)
    assert bytes(slot.read()[0]) == b"B" * 5000
    assert os.stat(tmp_path / "s.state").st_ino != os.stat(tmp_path / "s.state.versions/0").st_ino
    assert not [p for p in (tmp_path / "s.state.versions").iterdir() if ".tmp-" in p.name]


def test_a_process_writing_a_new_object_every_save_keeps_a_bounded_set_of_locks(
    tmp_path: Path,
) -> None:
    """Delta saves write a new pack object per save: the per-path lock must not outlive it."""
    import gc

    from statevault.storage import local

    sm = StateManager(str(tmp_path / "s.state"))
    values = np.arange(20_000, dtype=np.float64)
    before = len(local._file_locks)
    for i in range(40):
        values = np.append(values, float(i))
        sm.save({"x": values})
    gc.collect()
    assert len(local._file_locks) - before <= 8  # HEAD, its sidecars; not one per pack


def test_two_live_stores_on_one_path_share_their_lock(tmp_path: Path) -> None:
    """One lock per path while any store of it lives: it is what excludes their threads."""
    a = LocalStore(str(tmp_path / "s.state"))
    b = LocalStore(str(tmp_path / "s.state"))
    assert a._lock is b._lock


# -- listing and transient locks (the delta sweep, export) --------------------------------


def test_list_dir_skips_a_file_deleted_between_the_scan_and_its_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = open_store(tmp_path / "s.sv").sibling(".packs")
    folder.sibling("/kept").write([b"k"])
    folder.sibling("/gone").write([b"g"])
    real_scandir = os.scandir

    @contextlib.contextmanager
    def scan_then_collect(path: str) -> Iterator[list[os.DirEntry[str]]]:
        with real_scandir(path) as entries:
            found = list(entries)
        (Path(path) / "gone").unlink()  # a concurrent collection, after the scan
        yield found

    monkeypatch.setattr(os, "scandir", scan_then_collect)
    listed = folder.list_dir()
    monkeypatch.undo()
    assert listed is not None
    assert [e.name for e in listed] == ["kept"]  # not an empty listing for the whole folder


def test_dropping_new_lock_leaves_no_lock_file_the_block_created(tmp_path: Path) -> None:
    from statevault.metrics import CountingStore

    store = open_store(tmp_path / "archive.sv")
    with store.dropping_new_lock():
        store.write([b"archived"])
        assert (tmp_path / ".archive.sv.lock").exists()  # the write took it
    assert sorted(os.listdir(tmp_path)) == ["archive.sv"]
    counted = CountingStore(open_store(tmp_path / "other.sv"))
    with counted.dropping_new_lock():  # the counting layer forwards it
        counted.write([b"x"])
    assert not (tmp_path / ".other.sv.lock").exists()
    assert (tmp_path / "other.sv").read_bytes() == b"x"


def test_dropping_new_lock_keeps_a_lock_file_that_was_there(tmp_path: Path) -> None:
    store = open_store(tmp_path / "live.sv")
    store.write([b"a live writer's state"])
    with store.dropping_new_lock():
        store.write([b"replaced"])
    assert (tmp_path / ".live.sv.lock").exists()


def test_dropping_new_lock_keeps_a_lock_another_process_holds(path: Path) -> None:
    store = open_store(path)
    child = None
    try:
        with store.dropping_new_lock():
            store.write([b"ours"])
            # A writer in another process takes the lock before the block ends.
            child = _python(LOCK_HOLDER, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "locked"
        assert (path.parent / ".state.bin.lock").exists()  # held: kept
    finally:
        if child is not None:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            child.communicate(timeout=CHILD_TIMEOUT)
    assert child.returncode == 0
    assert path.read_bytes() == b"child"


def test_dropping_new_lock_is_a_no_op_where_no_lock_is_kept() -> None:
    memory = open_store("memory://drop-lock/p")
    with memory.dropping_new_lock():
        memory.write([b"x"])
    assert bytes(memory.read()[0]) == b"x"
    assert memory.sibling(".lock").info() is None

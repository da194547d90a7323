"""Local files: atomic replace (temp file, fsync, ``os.replace``, fsync dir) and flock-based CAS.

fsspec's local ``pipe_file`` writes in place, so a reader (or a crash) can see a truncated
file; this adapter does the temp-file dance itself. Every writer holds an exclusive
``flock`` on a sidecar ``.<name>.lock`` while it writes, so two processes never interleave,
compare-and-swap is real, and any ``.<name>.tmp-*`` found while holding the lock belongs to a
writer that died mid-write and is removed.

Portable: the cross-process lock is ``filelock`` (``flock`` on POSIX, ``msvcrt.locking`` on
Windows); on Windows a replace that meets a reader holding the file open is retried with a
bounded backoff, directories are not fsynced (Windows cannot open them; NTFS journals the
rename) and permission bits are left to the platform (only the read-only flag exists there).
See docs/storage.md for what is verified on Windows and what only on Linux.

Size: one module on purpose. The fault-injection tests (tests/faults/fs.py) route this
module's ``os`` and ``open`` through a faulty OS layer, and the Windows branches key on this
module's ``WINDOWS`` flag; OS helpers moved to another module would leave both, untested.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import filelock

from ..errors import StorageError, StoragePermissionError
from ..membuf import writable_buffer
from .base import (
    ANY,
    TOKEN_HEAD_BYTES,
    Listed,
    ObjectInfo,
    Store,
    byte_view,
    check_expected,
    check_range,
    head_crc,
    reject_storage_options,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["LocalStore"]

#: Mode of state files this adapter creates. An existing file keeps its own mode (see write).
NEW_FILE_MODE = 0o600
#: Mode of parent directories this adapter creates.
NEW_DIR_MODE = 0o700

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_ATTEMPTS = 3

#: Windows behaviour (replace retries, no directory fsync, no chmod). A module flag, not a
#: check at each call, so tests can run the Windows branches on Linux (docs/storage.md).
WINDOWS = sys.platform == "win32"
#: A replace blocked by a reader (Windows sharing violation) is retried this many times,
#: sleeping 5 ms, 10 ms, ... (capped at 0.25 s each; about 2 s in all) before giving up.
REPLACE_ATTEMPTS = 12
_REPLACE_BACKOFF_S = 0.005
_REPLACE_BACKOFF_MAX_S = 0.25


def _link_refused(path: str) -> StoragePermissionError:
    return StoragePermissionError(
        f"{path} is a symbolic link: statevault never follows links for the files it keeps "
        "beside a state (lock, versions, spool, .unreadable), since a planted link would "
        "redirect its writes. Remove the link (it is not statevault's)."
    )


class _FileLock:
    """An exclusive OS lock on one lock file, re-entrant within a thread, shared per process.

    The OS lock is ``filelock.FileLock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows),
    which excludes other processes; the RLock in front excludes the other threads of this one
    and adds re-entrancy, so a caller holding ``Store.lock()`` can call ``write``, which takes
    the same lock. ``thread_local=False``: the OS lock belongs to the process, the RLock says
    which thread holds it. The lock file is kept after release (deleting lock files races).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._os_lock = filelock.FileLock(path, mode=NEW_FILE_MODE, thread_local=False)
        # A soft lock (filelock's fallback where the platform has no OS lock) *is* the lock
        # file's existence: creating it first would wait forever, so only OS locks get it.
        self._precreate = not isinstance(self._os_lock, filelock.SoftFileLock)

    def acquire(self) -> None:
        self._rlock.acquire()
        try:
            if self._depth == 0:
                # Our own open first: it refuses a planted symbolic link and creates the file
                # 0600 under any umask, before filelock opens (and truncates) it.
                if self._precreate:
                    os.close(_open_lock_file(self.path))
                self._os_lock.acquire()
            self._depth += 1
        except BaseException:
            self._rlock.release()
            raise

    def release(self) -> None:
        try:
            self._depth -= 1
            if self._depth == 0:
                # Releasing closes the descriptor. POSIX leaves it closed even when close()
                # reports an error (EIO), and the write it guarded has already landed: that
                # error must not turn a done save into a failed one.
                with suppress(OSError):
                    self._os_lock.release()
        finally:
            self._rlock.release()

    def drop_if_free(self) -> None:
        """Unlink the lock file while holding it, if nobody holds it now (never waits).

        A process that opened the file before the unlink and locks it after is left holding
        an unlinked inode; filelock notices that on acquiring (a link count of 0) and opens
        the file anew, so the lock stays exclusive. Best effort: an OSError keeps the file.
        """
        if not self._rlock.acquire(blocking=False):
            return  # a thread of this process is taking or holding it
        try:
            if self._depth:
                return
            try:
                self._os_lock.acquire(timeout=0)
            except (filelock.Timeout, OSError):
                return  # held by another process: a live writer's now
            try:
                with suppress(OSError):
                    os.unlink(self.path)
            finally:
                with suppress(OSError):
                    self._os_lock.release()
        finally:
            self._rlock.release()


def _open_lock_file(path: str) -> int:
    """Open (creating it 0600) the lock file; a symbolic link there is refused, not followed."""
    flags = os.O_RDWR | _O_CLOEXEC | _O_NOFOLLOW
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
    except FileExistsError:
        try:
            return os.open(path, flags)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _link_refused(path) from e
            raise
    try:
        _set_mode(fd, NEW_FILE_MODE)  # the umask may have taken bits away
    except BaseException:
        os.close(fd)
        raise
    return fd


# Weak values: a lock lives as long as a store (or a holder) of that path does, so a process
# that writes a new object every save (delta packs) does not keep one lock per object forever.
# Two live stores on one path still share one lock, which is what excludes their threads.
_file_locks: weakref.WeakValueDictionary[str, _FileLock] = weakref.WeakValueDictionary()
_file_locks_guard = threading.Lock()


def _file_lock(path: str) -> _FileLock:
    with _file_locks_guard:
        lock = _file_locks.get(path)
        if lock is None:
            lock = _file_locks[path] = _FileLock(path)
        return lock


def _token(st: os.stat_result, crc: int) -> str:
    # ctime is left out on purpose: os.replace and chmod change it without changing content.
    # The CRC of the head guards against a recycled inode with equal size and mtime.
    return f"{st.st_dev:x}-{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}-{crc:08x}"


def _info(st: os.stat_result, crc: int) -> ObjectInfo:
    return ObjectInfo(
        size=st.st_size,
        modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
        token=_token(st, crc),
    )


def _same_version(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def _fsync(fd: int) -> None:
    # On macOS fsync only reaches the drive's cache; F_FULLFSYNC reaches the platter. On
    # Windows os.fsync is FlushFileBuffers, which reaches the drive.
    if sys.platform == "darwin":
        import fcntl

        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    else:
        os.fsync(fd)


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable; a few filesystems cannot fsync directories.

    Windows has no directory fsync (a directory cannot be opened as a file there); NTFS
    journals the rename itself, so this is a no-op on Windows.
    """
    if WINDOWS:
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _makedirs(path: str) -> None:
    """Create ``path`` and missing ancestors, all 0700 (``os.makedirs`` sets only the leaf)."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path:
        _makedirs(parent)
    try:
        os.mkdir(path, NEW_DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    else:
        os.chmod(path, NEW_DIR_MODE)  # the umask may have taken bits away


def _replace_file(src: str, dst: str) -> None:
    """``os.replace``, retried on Windows while a reader holds ``dst`` open.

    POSIX replaces under open readers. Windows refuses (PermissionError: sharing violation or
    access denied) while another process has ``dst`` open without FILE_SHARE_DELETE, which is
    how most programs, Python's ``open`` included, open files; such readers are short-lived,
    so the replace is retried with a bounded backoff, then reported as a ``StorageError`` that
    says so. The temp file stays intact until the caller removes it.
    """
    delay = _REPLACE_BACKOFF_S
    for attempt in range(REPLACE_ATTEMPTS):
        try:
            os.replace(src, dst)
            return
        except PermissionError as e:
            if not WINDOWS:
                raise
            if attempt == REPLACE_ATTEMPTS - 1:
                raise StorageError(
                    f"Could not replace {dst}: another program keeps it open (Windows does not "
                    f"replace a file that is open), {REPLACE_ATTEMPTS} attempts over about "
                    "2 s. Close the program reading it, then save again; the stored state is "
                    "the previous one."
                ) from e
            time.sleep(delay)
            delay = min(delay * 2, _REPLACE_BACKOFF_MAX_S)


def _set_mode(fd: int, mode: int) -> None:
    """Give the new file ``mode``; Windows has only a read-only flag, so nothing there."""
    if not WINDOWS and hasattr(os, "fchmod"):
        os.fchmod(fd, mode)


def _pread(fd: int, length: int, offset: int) -> bytes:
    """``os.pread`` where the platform has it (not Windows); seek and read elsewhere."""
    if hasattr(os, "pread") and not WINDOWS:
        return os.pread(fd, length, offset)
    with open(fd, "rb", buffering=0, closefd=False) as f:
        f.seek(offset)
        return f.read(length) or b""


def _pread_all(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``; return how many bytes were read (short only at EOF)."""
    got = 0
    with open(fd, "rb", buffering=0, closefd=False) as f:
        f.seek(offset)
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
    return got


class LocalStore(Store):
    """A state file on the local filesystem; atomic and truly conditional across processes.

    - ``write`` takes an exclusive OS lock (filelock) on ``.<name>.lock`` (kept, never deleted:
      deleting lock files races), removes temp files of dead writers, checks ``expect``,
      writes ``.<name>.tmp-<pid>-<random>`` in the same directory, fsyncs it,
      ``os.replace``-s it over the state and fsyncs the directory. Readers never lock: they
      see the old file or the new one.
    - New files get mode 0600 and missing parent directories 0700. Replacing an existing
      file keeps that file's permission bits, so a deliberate ``chmod 640`` survives saves.
    - Symlinks in the path are resolved when the store is opened, so a save replaces the
      link's target and the link stays. Side files (``sibling()`` stores: versions,
      ``.unreadable``; the spool, ``follow_symlinks=False``) and lock files are the opposite:
      a link there is never followed. Reading one is refused (``StoragePermissionError``),
      writing one replaces the link itself, and a linked ``.versions`` directory is refused.
    - Each write lists the directory once to find dead temp files.
    """

    protocol = "file"
    atomic = True
    conditional = True

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        follow_symlinks: bool = True,
    ) -> None:
        """``follow_symlinks=False``: the directory is resolved, the file itself never followed."""
        reject_storage_options(storage_options, "a local path")
        path = url[len("file://") :] if url.startswith("file://") else url
        path = os.path.expanduser(path)
        if follow_symlinks:
            path = os.path.realpath(path)
        else:
            head, tail = os.path.split(os.path.abspath(path))
            path = os.path.join(os.path.realpath(head), tail)
        self._bind(path, nofollow=not follow_symlinks)

    def _bind(self, path: str, *, nofollow: bool, plain_dirs: tuple[str, ...] = ()) -> None:
        self.path = path
        self.url = self.path
        self._dir, self._name = os.path.split(self.path)
        self._nofollow = _O_NOFOLLOW if nofollow else 0
        # Directories between the resolved state directory and a side file (``.versions``):
        # checked with lstat before each use, never followed.
        self._plain_dirs = plain_dirs
        self._lock = _file_lock(os.path.join(self._dir, f".{self._name}.lock"))
        self._temp_name = re.compile(rf"\.{re.escape(self._name)}\.tmp-\d+-[0-9a-f]{{16}}")

    # -- reading ------------------------------------------------------------------------

    def read(self) -> tuple[Buffer, ObjectInfo]:
        """Return the file as fresh writable memory (so numpy can wrap it without a copy):
        a ``bytearray``, or for a large file a writable ``memoryview`` (``membuf``).

        The info comes from ``fstat`` on the same descriptor after reading, so it describes
        exactly these bytes (a replace during the read does not affect an open descriptor).
        """
        try:
            fd = self._open_read()
        except FileNotFoundError as e:
            raise self._not_found(e) from e
        except OSError as e:
            raise self._translate(e, "reading") from e
        try:
            # Only a program writing the file in place (never statevault) can make two stats
            # disagree; retry a few times, then say so.
            for _ in range(_READ_ATTEMPTS):
                before = os.fstat(fd)
                buf = writable_buffer(before.st_size)  # large: mapped, huge pages
                got = _pread_all(fd, memoryview(buf), 0)
                grew = _pread(fd, 1, before.st_size)
                after = os.fstat(fd)
                if got == before.st_size and not grew and _same_version(before, after):
                    return buf, _info(after, head_crc(buf))
        except OSError as e:
            raise self._translate(e, "reading") from e
        finally:
            os.close(fd)
        raise StorageError(
            f"{self.url} kept changing while being read: another program writes it in place. "
            "Stop that program or point it at a copy."
        )

    def read_head(self, length: int) -> tuple[bytes, ObjectInfo] | None:
        """The first ``length`` bytes and the info of the same file (one descriptor)."""
        try:
            fd = self._open_read()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._translate(e, "reading") from e
        try:
            st = os.fstat(fd)
            want = min(length, st.st_size)
            # The token's CRC covers the first TOKEN_HEAD_BYTES, so read at least those.
            buf = bytearray(max(want, min(TOKEN_HEAD_BYTES, st.st_size)))
            got = _pread_all(fd, memoryview(buf), 0)
            head = bytes(buf[:got])
        except OSError as e:
            raise self._translate(e, "reading") from e
        finally:
            os.close(fd)
        return head[:want], _info(st, head_crc(head))

    def read_range(self, start: int, end: int) -> bytes:
        return bytes(self.read_range_owned(start, end))  # one copy (a read-only result)

    def read_range_owned(self, start: int, end: int) -> bytearray | memoryview:
        """Bytes ``[start, end)`` read straight into fresh memory (``membuf``): no copy."""
        check_range(start, end)
        try:
            with open(self._open_read(), "rb", buffering=0) as f:
                size = os.fstat(f.fileno()).st_size
                end = min(end, size)
                if end <= start:
                    return bytearray()
                view = memoryview(writable_buffer(end - start))
                got = _pread_all(f.fileno(), view, start)
                return view if got == len(view) else view[:got]
        except FileNotFoundError as e:
            raise self._not_found(e) from e
        except OSError as e:
            raise self._translate(e, "reading") from e

    def info(self) -> ObjectInfo | None:
        try:
            return self._current()
        except OSError as e:
            raise self._translate(e, "inspecting") from e

    def _current(self) -> ObjectInfo | None:
        try:
            fd = self._open_read()
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            head = _pread(fd, TOKEN_HEAD_BYTES, 0)
            return _info(st, zlib.crc32(head))
        finally:
            os.close(fd)

    def _open_read(self) -> int:
        """Open the file for reading; for a side file, refuse links instead of following."""
        self._check_plain_dirs()
        try:
            return os.open(self.path, os.O_RDONLY | _O_CLOEXEC | self._nofollow)
        except OSError as e:
            if self._nofollow and e.errno == errno.ELOOP:
                raise _link_refused(self.path) from e
            raise

    def _check_plain_dirs(self) -> None:
        for directory in self._plain_dirs:
            try:
                st = os.lstat(directory)
            except FileNotFoundError:
                return
            except OSError as e:
                raise self._translate(e, "inspecting") from e
            if stat.S_ISLNK(st.st_mode):
                raise _link_refused(directory)

    def _translate(self, exc: BaseException, action: str) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        return super()._translate(exc, action)

    # -- writing ------------------------------------------------------------------------

    def lock(self) -> AbstractContextManager[None]:
        """The cross-process exclusive lock ``write`` uses (re-entrant within a thread).

        Creates missing parent directories, since the lock file lives beside the state.
        """
        return self._locked("locking")

    @contextmanager
    def _locked(self, action: str) -> Iterator[None]:
        try:
            self._check_plain_dirs()
            _makedirs(self._dir)
            self._lock.acquire()
        except (OSError, StorageError) as e:
            raise self._translate(e, action) from e
        try:
            yield
        finally:
            self._lock.release()

    def write(self, chunks: Sequence[Buffer], *, expect: object = ANY) -> ObjectInfo:
        """Atomically replace the file (see the class docstring for the steps).

        Chunks are consumed one by one, so a long sequence is never joined in memory.
        """
        with self._locked("saving"):
            try:
                self._remove_dead_temps()
                if expect is not ANY:
                    self._check_expected(expect)
                try:
                    st = os.lstat(self.path) if self._nofollow else os.stat(self.path)
                except FileNotFoundError:
                    mode = NEW_FILE_MODE
                else:
                    # A link at a side file's name is replaced, never followed (nor its mode).
                    link = stat.S_ISLNK(st.st_mode)
                    mode = NEW_FILE_MODE if link else stat.S_IMODE(st.st_mode)
                return self._replace(chunks, mode)
            except OSError as e:
                raise self._translate(e, "saving") from e

    def _check_expected(self, expect: object) -> None:
        check_expected(self.url, self._current(), expect)

    def _replace(self, chunks: Sequence[Buffer], mode: int) -> ObjectInfo:
        tmp = os.path.join(self._dir, f".{self._name}.tmp-{os.getpid()}-{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, NEW_FILE_MODE)
        try:
            try:
                _set_mode(fd, mode)  # also undoes what the umask took from NEW_FILE_MODE
                crc = 0
                head_left = TOKEN_HEAD_BYTES
                for chunk in chunks:
                    view = byte_view(chunk)
                    if head_left:
                        crc = zlib.crc32(view[:head_left], crc)
                        head_left -= min(head_left, len(view))
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                _fsync(fd)
                _replace_file(tmp, self.path)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self._dir)
            # fstat after the rename: the inode is the new state file.
            return _info(os.fstat(fd), crc)
        finally:
            os.close(fd)

    def _remove_dead_temps(self) -> None:
        """Delete ``.<name>.tmp-*`` files: under the exclusive lock no live writer owns one."""
        with os.scandir(self._dir) as entries:
            for entry in entries:
                if self._temp_name.fullmatch(entry.name):
                    with suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def delete(self) -> bool:
        if not os.path.isdir(self._dir):
            return False
        with self._locked("deleting"):
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                return False
            except OSError as e:
                raise self._translate(e, "deleting") from e
            return True

    def discard_lock(self) -> None:
        # best effort: a lock file left behind costs an inode, not correctness
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self._dir, f".{self._name}.lock"))

    @contextmanager
    def dropping_new_lock(self) -> Iterator[None]:
        """The ``.<name>.lock`` this block's writes created is unlinked at its end, under the
        lock itself and only if no process holds it then; one there before the block stays."""
        existed = os.path.lexists(self._lock.path)
        try:
            yield
        finally:
            if not existed:
                self._lock.drop_if_free()

    def list_dir(self) -> list[Listed] | None:
        """One ``scandir`` of the directory ``<path>``: regular files with ``st_size`` and
        ``st_mtime`` (links and subdirectories are not objects)."""
        # Hidden entries are lock and temp files, never objects.
        try:
            with os.scandir(self.path) as entries:
                found = []
                for e in entries:
                    if e.name.startswith(".") or not e.is_file(follow_symlinks=False):
                        continue
                    try:
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted since the scan saw it (a concurrent collection)
                    found.append(Listed(e.name, st.st_size, st.st_mtime))
                return found
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._translate(e, "listing") from e

    def keep_copy(self, dest: Store, chunks: Sequence[Buffer], written: ObjectInfo) -> int:
        """Hard-link the file just written into ``dest`` (no second copy of the bytes).

        State files are only ever replaced, never written in place, so the link keeps this
        version's bytes when the state moves on. If the file was replaced again between the
        write and the link (its token differs from ``written``), or linking is not possible
        (another filesystem), the bytes are written again instead.
        """
        if not isinstance(dest, LocalStore):
            return super().keep_copy(dest, chunks, written)
        tmp = os.path.join(dest._dir, f".{dest._name}.tmp-{os.getpid()}-{secrets.token_hex(8)}")
        dest._check_plain_dirs()
        try:
            _makedirs(dest._dir)
            os.link(self.path, tmp)
        except OSError:
            return super().keep_copy(dest, chunks, written)
        try:
            with open(tmp, "rb", buffering=0) as f:
                same = _info(os.fstat(f.fileno()), head_crc(f.read(TOKEN_HEAD_BYTES)))
            if same.token == written.token:
                with dest._locked("keeping a version"):
                    _replace_file(tmp, dest.path)
                return 0
        except OSError as e:
            raise dest._translate(e, "keeping a version") from e
        finally:
            # A temp link left behind (EIO here) is removed by the slot's next write.
            with suppress(OSError):
                os.unlink(tmp)
        return super().keep_copy(dest, chunks, written)

    def sibling(self, suffix: str) -> LocalStore:
        """The side file ``<path><suffix>``: never resolved, so a planted link is not followed."""
        path = os.path.normpath(self.path + suffix)
        plain = []
        directory = os.path.dirname(path)
        while directory.startswith(self._dir + os.sep):
            plain.append(directory)
            directory = os.path.dirname(directory)
        side = LocalStore.__new__(LocalStore)
        side._bind(path, nofollow=True, plain_dirs=tuple(reversed(plain)))
        return side

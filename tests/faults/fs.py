"""A faulty ``os`` for the local store: real calls on a real disk, with chosen ones failing.

``FaultyOS`` stands in for the ``os`` module (and ``fcntl``, and the builtin ``open``) inside
``statevault.storage.local`` only, and only for paths under one ``root`` (the directory of the
store under test) and the descriptors opened there. Every such call is numbered in order; an
armed fault makes the call numbered ``at`` (or the ``nth`` call of one operation) fail with a
chosen errno, either *before* it happens or *after* it happened ("landed but reported
failure": the rename took place, then the caller sees EIO). ``times`` makes the fault repeat
on that many consecutive matching calls, ``forever`` until disarmed.

Use ``inject_local(root)`` as a context manager::

    with inject_local(tmp_path) as fos:
        fos.arm(op="fsync", nth=2, err=errno.EIO, after=True)
        sm.save(state)
"""

from __future__ import annotations

import builtins
import errno as errno_mod
import fcntl as real_fcntl
import os as real_os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MUTATING", "Call", "Fault", "FaultyOS", "inject_local"]

#: Operations that change the disk: only these have a meaningful "after" (landed) fault.
MUTATING = frozenset(
    {"open_create", "write", "fsync", "replace", "link", "unlink", "mkdir", "fchmod", "close"}
)


@dataclass(frozen=True)
class Call:
    """One intercepted call: its number, operation and the path it concerned."""

    index: int
    op: str
    path: str


@dataclass
class Fault:
    """What to fail: the call number ``at``, or the ``nth`` (1-based) call of ``op``; with
    ``where``, only calls whose path contains that text count."""

    err: int = errno_mod.EIO
    at: int | None = None
    op: str | None = None
    nth: int = 1
    after: bool = False
    times: int = 1
    where: str | None = None
    fired: int = 0
    seen: int = 0

    def matches(self, call: Call) -> bool:
        if self.fired >= self.times:
            return False
        if self.where is not None and self.where not in call.path:
            return False
        if self.at is not None:
            hit = call.index >= self.at and (self.op is None or call.op == self.op)
        elif self.op is None:
            hit = True
        else:
            if call.op != self.op:
                return False
            self.seen += 1
            hit = self.seen >= self.nth
        return hit


@dataclass
class FaultyOS:
    """The fault-injecting stand-in for ``os``; see the module docstring."""

    root: str
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _fds: dict[int, str] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = real_os.path.realpath(self.root)
        self.path = real_os.path

    # -- control ------------------------------------------------------------------------

    def arm(
        self,
        *,
        at: int | None = None,
        op: str | None = None,
        nth: int = 1,
        err: int = errno_mod.EIO,
        after: bool = False,
        times: int = 1,
        where: str | None = None,
    ) -> Fault:
        """Add a fault (see ``Fault``); ``times=-1`` repeats it until ``disarm``."""
        fault = Fault(err=err, at=at, op=op, nth=nth, after=after, times=times, where=where)
        if times < 0:
            fault.times = 1 << 62
        self.faults.append(fault)
        return fault

    def disarm(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        self.disarm()
        self.calls.clear()

    @property
    def fired(self) -> int:
        return sum(f.fired for f in self.faults)

    # -- interception -------------------------------------------------------------------

    def _scoped(self, path: Any) -> str | None:
        if isinstance(path, int):
            return self._fds.get(path)
        try:
            text = real_os.fsdecode(path)
        except TypeError:
            return None
        full = real_os.path.abspath(text)
        if full == self.root or full.startswith(self.root + real_os.sep):
            return full
        return None

    def _do(self, op: str, target: Any, fn: Callable[[], Any]) -> Any:
        where = self._scoped(target)
        if where is None:
            return fn()
        with self._guard:
            call = Call(len(self.calls), op, where)
            self.calls.append(call)
            fault = next((f for f in self.faults if f.matches(call)), None)
            if fault is not None:
                fault.fired += 1
        if fault is None:
            return fn()
        error = OSError(fault.err, real_os.strerror(fault.err), where)
        if fault.after and op in MUTATING:
            result = fn()
            if op == "open_create" and isinstance(result, int):
                real_os.close(result)  # the file exists now; the caller never sees the fd
            raise error
        raise error

    # fd-returning calls register the descriptor so later fd calls are scoped too.
    def open(self, path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        op = "open_create" if flags & real_os.O_CREAT else "open"
        fd: int = self._do(op, path, lambda: real_os.open(path, flags, mode, dir_fd=dir_fd))
        where = self._scoped(path)
        if where is not None:
            self._fds[fd] = where
        return fd

    def close(self, fd: int) -> None:
        where = self._fds.get(fd)

        def go() -> None:
            self._fds.pop(fd, None)
            real_os.close(fd)

        if where is None:
            real_os.close(fd)
            return
        try:
            self._do("close", fd, go)
        finally:
            if fd in self._fds:  # a fault before the close: the descriptor must not leak
                self._fds.pop(fd, None)
                real_os.close(fd)

    def write(self, fd: int, data: Any) -> int:
        n: int = self._do("write", fd, lambda: real_os.write(fd, data))
        return n

    def fsync(self, fd: int) -> None:
        self._do("fsync", fd, lambda: real_os.fsync(fd))

    def fstat(self, fd: int) -> real_os.stat_result:
        st: real_os.stat_result = self._do("fstat", fd, lambda: real_os.fstat(fd))
        return st

    def fchmod(self, fd: int, mode: int) -> None:
        self._do("fchmod", fd, lambda: real_os.fchmod(fd, mode))

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        data: bytes = self._do("pread", fd, lambda: real_os.pread(fd, n, offset))
        return data

    def stat(self, path: Any, *args: Any, **kwargs: Any) -> real_os.stat_result:
        st: real_os.stat_result = self._do(
            "stat", path, lambda: real_os.stat(path, *args, **kwargs)
        )
        return st

    def lstat(self, path: Any, *args: Any, **kwargs: Any) -> real_os.stat_result:
        st: real_os.stat_result = self._do(
            "stat", path, lambda: real_os.lstat(path, *args, **kwargs)
        )
        return st

    def replace(self, src: Any, dst: Any, **kwargs: Any) -> None:
        self._do("replace", dst, lambda: real_os.replace(src, dst, **kwargs))

    def link(self, src: Any, dst: Any, **kwargs: Any) -> None:
        self._do("link", dst, lambda: real_os.link(src, dst, **kwargs))

    def unlink(self, path: Any, **kwargs: Any) -> None:
        self._do("unlink", path, lambda: real_os.unlink(path, **kwargs))

    def mkdir(self, path: Any, mode: int = 0o777, **kwargs: Any) -> None:
        self._do("mkdir", path, lambda: real_os.mkdir(path, mode, **kwargs))

    def scandir(self, path: Any = ".") -> Any:
        return self._do("scandir", path, lambda: real_os.scandir(path))

    def __getattr__(self, name: str) -> Any:
        return getattr(real_os, name)

    # -- fcntl and builtin open -----------------------------------------------------------

    def flock(self, fd: int, operation: int) -> None:
        self._do("flock", fd, lambda: real_fcntl.flock(fd, operation))

    def open_file(self, file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, int):
            return builtins.open(file, *args, **kwargs)
        return self._do("open", file, lambda: builtins.open(file, *args, **kwargs))


class _Fcntl:
    def __init__(self, fos: FaultyOS) -> None:
        self._fos = fos

    def flock(self, fd: int, operation: int) -> None:
        self._fos.flock(fd, operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(real_fcntl, name)


@contextmanager
def inject_local(root: str | Path) -> Iterator[FaultyOS]:
    """Route ``statevault.storage.local``'s OS calls under ``root`` through a ``FaultyOS``.

    Calls on other paths (the spool directory, say, if it lies elsewhere) pass through
    untouched and unnumbered. Restores the module on exit, even on error.
    """
    from statevault.storage import local

    fos = FaultyOS(str(root))
    saved = {name: local.__dict__.get(name) for name in ("os", "fcntl", "open")}
    local.os = fos  # type: ignore[assignment]
    local.fcntl = _Fcntl(fos)  # type: ignore[assignment]
    local.open = fos.open_file  # type: ignore[attr-defined]
    try:
        yield fos
    finally:
        for name, value in saved.items():
            if value is None:
                local.__dict__.pop(name, None)
            else:
                setattr(local, name, value)

"""Section payload layout: one encoded value as header + buffer table + JSON doc + aligned buffers.

Layout (all integers little-endian; offsets relative to the payload start)::

    0   4s  magic b"SVCD"
    4   u8  payload layout version (1)
    5   3x  reserved, zero
    8   u32 length of the JSON document in bytes
    12  u32 number of buffers N
    16  N x (u64 offset, u64 length)      buffer table
    ..  the JSON document (UTF-8; surrogate code points as with Python's "surrogatepass")
    ..  zero padding to the next multiple of 64, then buffer 0, padding, buffer 1, ...

Each buffer starts at the first multiple of 64 at or after the end of what precedes it, and the
payload ends exactly where the last buffer (or, with none, the document) ends. The reader
checks every one of these facts, so a damaged or truncated payload is reported as such rather
than read past its end. Integrity (checksums) is the frame's job, not this layer's.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from statevault.errors import CorruptStateError, TruncatedStateError, UnsupportedFormatError
from statevault.membuf import fresh_buffer

__all__ = ["ALIGN", "MAGIC", "VERSION", "Buffer", "pack", "unpack", "unpack_parts"]

Buffer = bytes | bytearray | memoryview
"""Anything the payload functions accept or return as a chunk of bytes."""

MAGIC = b"SVCD"
VERSION = 1
ALIGN = 64
_HEAD = struct.Struct("<4sB3sII")
_ENTRY = struct.Struct("<QQ")
_ZEROS = bytes(ALIGN)
_EMPTY = memoryview(b"")


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def pack(doc: bytes, buffers: list[memoryview]) -> list[Buffer]:
    """Chunks of one payload, to be written back to back; buffers are not copied."""
    nbuf = len(buffers)
    table_end = _HEAD.size + _ENTRY.size * nbuf
    doc_end = table_end + len(doc)
    entries = []
    tail: list[Buffer] = []
    end = doc_end
    for buf in buffers:
        offset = _align(end)
        if offset > end:
            tail.append(_ZEROS[: offset - end])
        size = buf.nbytes
        entries.append(_ENTRY.pack(offset, size))
        tail.append(buf)
        end = offset + size
    head = b"".join([_HEAD.pack(MAGIC, VERSION, b"\0\0\0", len(doc), nbuf), *entries, doc])
    chunks: list[Buffer] = [head]
    chunks.extend(c for c in tail if len(c))  # empty buffers add no chunk
    return chunks


def _as_bytes_view(data: Buffer) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError as exc:
        raise CorruptStateError(
            f"a section payload must be bytes-like, got {type(data).__name__}"
        ) from exc
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")
    return view


def unpack(data: Buffer) -> tuple[memoryview, list[memoryview]]:
    """Split a payload into its document bytes and buffers (views into ``data``, no copies).

    Raises TruncatedStateError when the payload is shorter than its header says,
    CorruptStateError when it is otherwise malformed, UnsupportedFormatError for a newer
    layout version.
    """
    return unpack_parts([data])


class _Parts:
    """A payload given as parts (their concatenation): ranges of it as views or one copy."""

    __slots__ = ("size", "starts", "views")

    def __init__(self, parts: Sequence[Buffer]) -> None:
        self.views = [v for v in map(_as_bytes_view, parts) if v.nbytes]
        self.starts = list(accumulate((v.nbytes for v in self.views), initial=0))
        self.size = self.starts[-1]

    def span(self, at: int, n: int) -> memoryview:
        """Bytes ``[at, at + n)`` (within the payload): a view of the part holding them all,
        else fresh writable memory they are copied into once (``statevault.membuf``)."""
        if n <= 0:
            return memoryview(b"")
        i = bisect_right(self.starts, at) - 1
        views, starts = self.views, self.starts
        off = at - starts[i]
        if off + n <= views[i].nbytes:
            return views[i][off : off + n]
        out = memoryview(fresh_buffer(n))
        self.copy_into(out, at, i)
        return out

    def inside(self, at: int, n: int) -> memoryview | None:
        """Bytes ``[at, at + n)`` as a view of the part holding them all, else None."""
        if n <= 0:
            return memoryview(b"")
        i = bisect_right(self.starts, at) - 1
        off = at - self.starts[i]
        view = self.views[i]
        return view[off : off + n] if off + n <= view.nbytes else None

    def copy_into(self, out: memoryview, at: int, i: int | None = None) -> None:
        """Fill ``out`` with the payload's bytes from ``at`` on (``i``: the part holding
        ``at``, if known)."""
        views, starts, n = self.views, self.starts, out.nbytes
        if i is None:
            i = bisect_right(starts, at) - 1
        got = 0
        while got < n:
            off = at + got - starts[i]
            take = min(n - got, views[i].nbytes - off)
            out[got : got + take] = views[i][off : off + take]
            got += take
            i += 1


def unpack_parts(parts: Sequence[Buffer]) -> tuple[memoryview, list[memoryview]]:
    """``unpack`` of a payload given as ``parts`` (their concatenation), never joined whole.

    A buffer that lies inside one part is a view of it (writable if that part is: a caller
    passing writable parts gives them away, so pass only memory nothing else uses); the
    buffers spread over several parts (delta buffers made of several pieces) are copied once,
    each into its own 64-byte aligned slice of one fresh writable allocation, which then is
    their arrays' memory (non-overlapping: writing to one changes no other; the allocation
    lives while any of them does). The header, table and document
    are copied only where they straddle parts. Errors as ``unpack``; never a struct.error.
    """
    payload = _Parts(parts)
    size = payload.size
    if size < _HEAD.size:
        raise TruncatedStateError(
            f"section payload is {size} bytes, shorter than its {_HEAD.size}-byte header: "
            f"the state is truncated"
        )
    magic, version, reserved, doc_len, nbuf = _HEAD.unpack_from(payload.span(0, _HEAD.size))
    if magic != MAGIC:
        raise CorruptStateError(
            f"section payload does not start with {MAGIC!r}: the state is damaged or not ours"
        )
    if version > VERSION:
        raise UnsupportedFormatError(
            f"section payload layout version {version} is newer than this statevault reads "
            f"({VERSION}): upgrade statevault"
        )
    if version < 1 or reserved != b"\0\0\0":
        raise CorruptStateError("section payload header is damaged (bad version or reserved bytes)")
    table_end = _HEAD.size + _ENTRY.size * nbuf
    doc_end = table_end + doc_len
    if doc_end > size:
        raise TruncatedStateError(
            f"section payload is {size} bytes but its header needs {doc_end} before the "
            f"buffers: the state is truncated"
        )
    buffers: list[memoryview] = []
    spread: list[tuple[int, int, int]] = []  # (buffer, offset, length) over several parts
    end = doc_end
    table = payload.span(_HEAD.size, table_end - _HEAD.size)
    for i, (offset, length) in enumerate(_ENTRY.iter_unpack(table)):
        if offset != _align(end):
            raise CorruptStateError(
                f"section payload buffer {i} is at offset {offset}, expected {_align(end)}: "
                f"the state is damaged"
            )
        if offset + length > size:
            raise TruncatedStateError(
                f"section payload is {size} bytes but buffer {i} ends at {offset + length}: "
                f"the state is truncated"
            )
        view = payload.inside(offset, length)
        if view is None:
            spread.append((i, offset, length))
            view = _EMPTY  # filled in below
        buffers.append(view)
        end = offset + length
    if end != size:
        raise CorruptStateError(
            f"section payload has {size - end} unexpected bytes after its end: the state is damaged"
        )
    _assemble(payload, spread, buffers)
    return payload.span(table_end, doc_len), buffers


ARENA_MAX = 2 << 20
"""Buffers spread over parts are assembled into shared allocations of at most this size."""


def _assemble(payload: _Parts, spread: list[tuple[int, int, int]], out: list[memoryview]) -> None:
    """Copy each spread buffer into its own aligned slice of fresh, uninitialised memory.

    Small buffers share allocations (a zero-filled bytearray each cost a memset and its own
    page faults: M's 250 buffers of 40 KB); one allocation stays below ``ARENA_MAX`` (and
    below numpy's 4 MiB huge-page threshold): a single 240 MB arena for L's buffers was
    faster on average but took 0.8 s instead of 0.15 s in one load of three on a busy
    machine, where a buffer each (0.2-0.35 s) never did.
    """
    k = 0
    while k < len(spread):
        total = _align(spread[k][2])
        end = k + 1
        while end < len(spread) and total + _align(spread[end][2]) <= ARENA_MAX:
            total += _align(spread[end][2])
            end += 1
        arena = memoryview(fresh_buffer(total))
        at = 0
        for i, offset, length in spread[k:end]:
            view = arena[at : at + length]
            payload.copy_into(view, offset)
            out[i] = view
            at += _align(length)
        k = end

"""Fresh writable memory for whole-object reads and decompression, at the machine's speed.

``bytearray(n)`` zero-fills its memory in user space and then faults it in one 4 KiB page at a
time; for an object of tens of MB that costs more than reading it from the page cache (a
49.5 MB state: 66 ms to allocate and read into a bytearray, 16 ms into this, bench/README.md
"Strings"). Large buffers are therefore anonymous private mappings, zero-filled by the kernel
on first touch, with transparent huge pages requested (2 MiB pages: 500 times fewer faults)
where the platform has ``MADV_HUGEPAGE``. Small buffers, and platforms without anonymous
mappings, keep ``bytearray``.

What the caller must know: the result is writable and owns its memory (numpy can wrap it
without a copy, and nothing else shares it); it stays allocated while any view of it lives.
Mapped memory is not seen by ``tracemalloc``, so traced peaks of a load exclude these buffers.
"""

from __future__ import annotations

import mmap
import sys
from contextlib import suppress

__all__ = ["MAPPED_MIN", "fresh_buffer", "writable_buffer"]

MAPPED_MIN = 32 << 20
"""Buffers of at least this many bytes are mapped; smaller ones are a ``bytearray``.

glibc's malloc serves requests below its mmap threshold (which grows up to 32 MiB on 64-bit)
from the heap, where the memory a previous load freed is reused without new page faults;
above it every ``bytearray`` is a fresh mapping anyway, and pays the zero fill on top."""

_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
_HUGE = getattr(mmap, "MADV_HUGEPAGE", None)


def writable_buffer(size: int) -> bytearray | memoryview:
    """``size`` zero bytes, writable: a ``bytearray``, or a ``memoryview`` of a fresh mapping."""
    if size < MAPPED_MIN or not hasattr(mmap, "MAP_ANONYMOUS"):
        return bytearray(size)
    try:
        mapped = mmap.mmap(-1, size, flags=_FLAGS)
    except (OSError, ValueError):  # no address space for a mapping: let malloc try
        return bytearray(size)
    if _HUGE is not None:
        with suppress(OSError):  # huge pages disabled or unsupported: ordinary pages work too
            mapped.madvise(_HUGE)
    return memoryview(mapped)


def fresh_buffer(size: int) -> bytearray | memoryview:
    """``size`` writable bytes of undefined content, for a caller that overwrites them all.

    numpy's ``empty`` when numpy is already imported (a state with arrays: it skips the zero
    fill, and numpy asks for huge pages above 4 MiB itself), else ``writable_buffer``. Same
    promises as ``writable_buffer`` otherwise: writable, owned, alive while a view lives.
    """
    np = sys.modules.get("numpy")
    if np is None or size < 4096:
        return writable_buffer(size)
    try:
        return memoryview(np.empty(size, dtype=np.uint8))
    except MemoryError:  # let the mapping try
        return writable_buffer(size)

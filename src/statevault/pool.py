"""Memory for snapshot copies, reused once nothing but the pool holds it.

A copy into fresh memory pays for the allocation (page faults for blocks that come from
``mmap``) on top of the memcpy. ``freeze(state, codec, pool)`` copies plain numeric arrays of
at least ``min_bytes`` (numpy arrays, the values of numpy-backed Series, one-dtype
DataFrames) into blocks lent by a ``CopyPool``; a later ``freeze`` with the same pool copies
into blocks whose snapshot has been written and dropped. With the short path for Series
this halves ``BackgroundSaver.save()`` on the bench's M state (bench/README.md).

Why reuse is safe: a block is lent out only as the memory of new arrays (numpy views keep a
reference to it) and taken back only when the pool holds the *only* reference to it
(``sys.getrefcount``), so no array, Series, memoryview or view of it is alive anywhere and
nothing can see it overwritten. A block something else still holds (a snapshot not yet
written, a save that kept a buffer) is left alone, and forgotten after a few rounds, so the
pool never keeps memory alive on its own for long.

What it costs: between two saves the pool keeps the last written snapshot's blocks (about
the size of the state's copied numeric data) instead of freeing them; free blocks a round did
not use are released at its end. Blocks have 1/8 spare room in whole pages, and a free block
up to twice a new one's size is reused, so a series that grows by a bar per save keeps
fitting its block for hundreds of saves.

Not thread-safe: one thread at a time calls ``begin``/``empty``/``end`` (the caller's lock);
other threads may drop their references to lent memory at any time.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Final

__all__ = ["CopyPool"]

#: Rounds a lent block that is still held elsewhere stays tracked before the pool forgets it.
KEEP_ROUNDS: Final = 4
#: Arrays below this many bytes are copied the ordinary way (a block would save nothing).
MIN_BYTES: Final = 16 * 1024
_PAGE: Final = 4096


def _refcount(entry: list[Any]) -> int:
    """References to ``entry[0]`` (the block), counted the same way for the baseline."""
    return sys.getrefcount(entry[0])


@functools.cache
def _only_ours() -> int:
    """The count ``_refcount`` gives for a block that only the pool's entry holds (measured
    once, the same way: what ``sys.getrefcount`` counts differs between Python versions)."""
    return _refcount([bytearray(1), 0])


class CopyPool:
    """Blocks of memory lent to one ``freeze`` at a time and reused when free (see module)."""

    def __init__(self, min_bytes: int = MIN_BYTES) -> None:
        #: Arrays smaller than this are copied the ordinary way (tests lower it to 0).
        self.min_bytes = min_bytes
        self._lent: list[list[Any]] = []  # [block, rounds since lent]
        self._free: dict[int, list[Any]] = {}  # size -> free blocks of that size
        #: Arrays copied into reused memory, and into newly allocated blocks (for the bench).
        self.reused = 0
        self.allocated = 0

    def begin(self) -> None:
        """Take back the blocks nothing else holds any more; age the others."""
        ours = _only_ours()
        kept: list[list[Any]] = []
        free = self._free
        for entry in self._lent:
            if _refcount(entry) == ours:
                block = entry[0]
                free.setdefault(len(block), []).append(block)
            elif entry[1] < KEEP_ROUNDS:
                entry[1] += 1
                kept.append(entry)
        self._lent = kept

    def empty(self, shape: tuple[int, ...], dtype: Any, order: str, nbytes: int) -> Any:
        """An uninitialised array of ``shape``/``dtype`` (``nbytes`` long) in memory order
        ``order`` ("C"/"F"), in a free block at most twice the size a new one would have, or
        in a new block."""
        np = sys.modules["numpy"]
        free = self._free
        new_size = -(-(nbytes + nbytes // 8) // _PAGE) * _PAGE  # 1/8 spare, whole pages
        # Most arrays fit the block of the same array at the last save (a series grows by a
        # bar a save, 1/8 spare room): looked up by size first, then the smallest that fits.
        blocks = free.get(new_size)
        if not blocks:
            fits = [size for size in free if nbytes <= size <= 2 * new_size and free[size]]
            blocks = free[min(fits)] if fits else None
        if blocks:
            block = blocks.pop()
            self.reused += 1
        else:
            block = np.empty(new_size, dtype=np.uint8)
            self.allocated += 1
        self._lent.append([block, 0])
        return np.ndarray(shape, dtype=dtype, buffer=block, order=order)

    def end(self) -> None:
        """Release the free blocks this round did not use (the state shrank or changed)."""
        self._free.clear()

"""Memory for snapshot copies, reused once nothing but the pool holds it.

A copy into fresh memory pays for the allocation (page faults for blocks that come from
``mmap``) on top of the memcpy. ``freeze(state, codec, pool)`` copies plain numeric arrays of
at least ``min_bytes`` (numpy arrays, the values of numpy-backed Series, one-dtype
DataFrames) into blocks lent by a ``CopyPool``; a later ``freeze`` with the same pool copies
into blocks whose snapshot has been written and dropped. With the short path for Series
this more than halves ``BackgroundSaver.save()`` on the bench's M state (bench/README.md).

Why reuse is safe: a block is lent out only as the memory of one array made on it (its
``base``; a numpy view of that array has the block as its ``base`` too) and taken back only
when the pool's entry holds the *only* reference to that array and the array the only one to
its block (``sys.getrefcount``), so no array, Series, memoryview or view of it is alive
anywhere and nothing can see it overwritten. A block something else still holds (a snapshot
not yet written, a save that kept a buffer) is left alone, and forgotten after a few rounds,
so the pool never keeps memory alive on its own for long. An array whose shape, dtype and
order the next copy asks for again (an unchanged or rolling state) is lent again as it is:
no new array object.

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
_FREE: Final = -1  # an entry's "rounds" while it waits in a free list (taken: 0 again)


def _refcounts(entry: list[Any]) -> tuple[int, int]:
    """References to ``entry[0]`` (the lent array) and to its block (the array's ``base``),
    counted the same way for the baseline."""
    return sys.getrefcount(entry[0]), sys.getrefcount(entry[0].base)


@functools.cache
def _only_ours() -> tuple[int, int]:
    """What ``_refcounts`` gives for an array only the pool's entry holds, on a block only
    that array holds (measured once, the same way: what ``sys.getrefcount`` counts differs
    between Python versions)."""
    np = sys.modules["numpy"]
    entry = [np.ndarray((1,), dtype=np.uint8, buffer=np.empty(1, dtype=np.uint8)), 0, "C"]
    return _refcounts(entry)


def _pop(entries: list[list[Any]] | None) -> list[Any] | None:
    """A free entry of ``entries``, marked taken (an entry sits in two free lists: the one it
    was taken from last may still list it)."""
    while entries:
        entry = entries.pop()
        if entry[1] == _FREE:
            entry[1] = 0
            return entry
    return None


class CopyPool:
    """Blocks of memory lent to one ``freeze`` at a time and reused when free (see module)."""

    def __init__(self, min_bytes: int = MIN_BYTES) -> None:
        #: Arrays smaller than this are copied the ordinary way (tests lower it to 0).
        self.min_bytes = min_bytes
        # Lent arrays as [array, rounds since lent, order]; the pool never holds a block
        # itself, only the one array made on it (the array's ``base``).
        self._lent: list[list[Any]] = []
        # The free entries of a round, by what their array is (shape, id of its dtype, order:
        # the dtype object itself, alive in the entry, so the id is not reused) and by the
        # size of their block.
        self._same: dict[tuple[Any, int, str], list[list[Any]]] = {}
        self._sized: dict[int, list[list[Any]]] = {}
        #: Arrays copied into reused memory, and into newly allocated blocks (for the bench).
        self.reused = 0
        self.allocated = 0

    def begin(self) -> None:
        """Take back the arrays nothing else holds any more (nor their block, nor a view of
        it: a view's ``base`` is the block); age the others."""
        ours = _only_ours()
        kept: list[list[Any]] = []
        same, sized = self._same, self._sized
        for entry in self._lent:
            # Writable too: an array someone marked read-only is not written into again.
            if _refcounts(entry) == ours and entry[0].flags.writeable:
                arr = entry[0]
                entry[1] = _FREE
                same.setdefault((arr.shape, id(arr.dtype), entry[2]), []).append(entry)
                sized.setdefault(arr.base.nbytes, []).append(entry)
            elif entry[1] < KEEP_ROUNDS:
                entry[1] += 1
                kept.append(entry)
        self._lent = kept

    def empty(self, shape: tuple[int, ...], dtype: Any, order: str, nbytes: int) -> Any:
        """An uninitialised array of ``shape``/``dtype`` (``nbytes`` long) in memory order
        ``order`` ("C"/"F"): a free array of exactly that (an unchanged state at the last
        save), or a new array in a free block at most twice the size a new one would have,
        or in a new block."""
        entry = _pop(self._same.get((shape, id(dtype), order)))
        if entry is not None:
            self.reused += 1
            self._lent.append(entry)
            return entry[0]
        np = sys.modules["numpy"]
        sized = self._sized
        new_size = -(-(nbytes + nbytes // 8) // _PAGE) * _PAGE  # 1/8 spare, whole pages
        # A series that grew by a bar since the last save fits its old block (1/8 spare
        # room): looked up by size first, then the smallest that fits.
        entry = _pop(sized.get(new_size))
        if entry is None:
            for size in sorted(s for s in sized if nbytes <= s <= 2 * new_size):
                entry = _pop(sized[size])
                if entry is not None:
                    break
        if entry is not None:
            block = entry[0].base
            entry[0] = None  # its old array is dropped; the block is the new array's
            self.reused += 1
        else:
            block = np.empty(new_size, dtype=np.uint8)
            self.allocated += 1
        arr = np.ndarray(shape, dtype=dtype, buffer=block, order=order)
        self._lent.append([arr, 0, order])
        return arr

    def end(self) -> None:
        """Release the free blocks this round did not use (the state shrank or changed)."""
        self._same.clear()
        self._sized.clear()

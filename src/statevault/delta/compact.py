"""Compaction of a delta save's plans: bounded packs per HEAD, bounded extents per buffer.

Amortised: a save merges only the *smallest* packs (and those less than half live) into its
own new pack once a HEAD would reference more than ``max_packs``, so the big base pack stays
put and a merge copies what changed recently; adjacent extents that move are coalesced into
one piece. The bytes come from the buffers being saved (never read back from storage).

Also the two whole-state operations built on a manager (``statevault compact`` / ``export``):
``compact_state`` (the state saved again as one fresh pack, by CAS) and ``export_state`` (the
state as one self-contained plain frame at another URL).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ConflictError, TargetExistsError
from ..storage import ANY, open_store
from ..transforms import Buffer
from .manifest import Index, PieceLoc
from .planner import BufferPlan, Extent, Planner

#: The planner's smallest piece (its default ``min_size``): extents per byte of a buffer that
#: the planner itself may produce, which the compaction backstop must allow.
MIN_PIECE = 16 * 1024

if TYPE_CHECKING:
    from ..manager import StateManager

__all__ = ["Compaction", "Exported", "compact_plan", "compact_state", "export_state", "merge_set"]


def merge_set(plans: Iterable[BufferPlan], index: Index, max_packs: int) -> set[bytes]:
    """Packs whose live pieces this save copies into its own pack: the fragmented ones
    (less than half live, and holding at least ``1 / (2 max_packs)`` of the referenced packs'
    bytes dead) and, above ``max_packs``, the smallest until half are left.

    The dead-bytes floor keeps a tick from copying the last tick's small pack again and again:
    without it, each tick's pack (the open chunks' tails, soon superseded) was under half live
    at the next tick, so every tick rewrote every buffer's growing tail (M: 67 KB written a
    tick over 200 ticks, 44 KB with the floor). Storage stays bounded: at most ``max_packs``
    packs each hold less than the floor dead, half the referenced bytes in all."""
    live: dict[bytes, int] = {}
    seen: set[bytes] = set()
    for plan in plans:
        for e in plan.extents:
            loc = index.pieces.get(e.piece)
            if loc is not None and e.piece not in seen:
                seen.add(e.piece)
                live[loc.pack] = live.get(loc.pack, 0) + loc.length
    floor = sum(index.packs[p].raw for p in live) // (2 * max_packs)
    merge = {
        p for p, n in live.items() if n * 2 < index.packs[p].raw and index.packs[p].raw - n >= floor
    }
    kept = sorted((p for p in live if p not in merge), key=lambda p: live[p])
    if len(kept) + 1 > max_packs:
        # The smallest go: the big base pack stays, so a merge copies O(recent change).
        while len(kept) > max(1, max_packs // 2):
            merge.add(kept.pop(0))
    return merge


@dataclass
class Compaction:
    """One save's compaction: the known pieces, the packs merged, the pieces added."""

    known: dict[bytes, PieceLoc]
    merge: set[bytes]
    planner: Planner
    fresh: dict[bytes, Buffer]  # the save's new pieces (compaction adds to them)
    moved: set[bytes]  # pieces compaction rewrote (into the new pack even if known)
    max_extents: int


def compact_plan(plan: BufferPlan, data: memoryview, c: Compaction) -> BufferPlan:
    """``plan`` with runs of extents in merged packs (and the new extents next to them)
    rewritten as one new piece each; a buffer of too many extents as one piece."""
    extents = plan.extents
    known, merge = c.known, c.merge
    # The planner bounds its own fragmentation (size // min_size + tail_limit + 4 extents,
    # re-chunking only what is not stored), so the whole-buffer rewrite here is a backstop
    # whose bound grows with the buffer: a fixed one rewrote a large buffer on every edit.
    if len(extents) > c.max_extents + plan.size // MIN_PIECE:
        pid = c.planner.piece_id(data)
        c.fresh.setdefault(pid, data)
        c.moved.add(pid)
        return BufferPlan((Extent(pid, 0, plan.size),), plan.size)
    if not merge or not any(e.piece in known and known[e.piece].pack in merge for e in extents):
        return plan
    out: list[Extent] = []
    run: list[Extent] = []
    start = position = 0

    def close() -> None:
        if not run:
            return
        if len(run) == 1 and run[0].piece not in known:
            out.append(run[0])  # a lone new piece: nothing to merge it with
        else:
            piece = data[start:position]
            pid = c.planner.piece_id(piece)
            c.fresh[pid] = piece
            c.moved.add(pid)
            out.append(Extent(pid, 0, position - start))
        run.clear()

    for e in extents:
        if e.piece not in known or known[e.piece].pack in merge:
            if not run:
                start = position
            run.append(e)
        else:
            close()
            out.append(e)
        position += e.length
    close()
    return BufferPlan(tuple(out), plan.size)


# -- whole-state operations ------------------------------------------------------------------

#: ``progress(step, done, total)``: called before each step of a long operation (the CLI).
ProgressFn = Callable[[str, int, int], None]


def compact_state(manager: StateManager, *, progress: ProgressFn | None = None) -> int:
    """Save the current state again as a freshly compacted delta HEAD; return its generation.

    The state is loaded, then saved with every piece anew into ONE pack (no piece shared with
    older packs, none unreferenced in it); the packs the old HEAD used are retired, so garbage
    collection deletes them after its grace period once no retained version needs them. The
    save is a compare-and-swap on the HEAD loaded: if another writer saved in between,
    ``ConflictError`` and nothing is written over its state (run it again). A new generation,
    like ``restore()``: another long-lived manager of the state gets ``ConflictError`` on its
    next save and must load again. Needs ``delta=True`` (the default).
    """
    with manager.lock:
        delta = manager.layers.commit.delta
        if delta is None:
            raise ConfigurationError(
                f"{manager.url}: compacting needs a manager with delta=True (the default)"
            )
        if progress is not None:
            progress("reading and decoding the current state", 1, 2)
        state = manager.load()
        if progress is not None:
            progress("saving it as one fresh pack", 2, 2)
        delta.force_full = True  # every piece into the new pack (committed() clears it)
        try:
            return manager.save(state)
        finally:
            delta.force_full = False


@dataclass(frozen=True)
class Exported:
    """What ``export_state`` wrote: where, the generation it holds, its size in bytes."""

    url: str
    generation: int
    size: int


def export_state(
    manager: StateManager,
    out: str | os.PathLike[str],
    *,
    force: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> Exported:
    """Write the state stored at the manager's URL as ONE self-contained frame (format 1,
    what ``delta=False`` saves) to ``out``: a path or any fsspec URL; ``storage_options``
    for ``out``.

    The HEAD is read and checked (every checksum; a delta HEAD's pieces from its packs) and
    rebuilt through the manager's save stack: same generation, meta and creation time,
    compressed and encrypted as the manager saves (encrypted with its first key, if any).
    Nothing is decoded, so types this process does not register are copied as stored. The
    write is atomic; it refuses an existing ``out`` with ``TargetExistsError`` (checked by
    the write itself, so a racing creator is never overwritten) unless ``force``. The source
    is never written, and a save waiting in the local spool is not included. A local ``out``
    gets no lock file left beside it.
    """
    with manager.lock:
        frames = manager.layers.frames
        if progress is not None:
            progress("reading and checking the current state", 1, 2)
        data, _ = frames.read()
        chunks = frames.reframe(data)
        header = frames.reader(data).header
    if progress is not None:
        progress("writing the self-contained copy", 2, 2)
    target = open_store(out, storage_options)
    # An export is an archive, not a live state: lock state this write creates beside it
    # goes (what was there before may be a live writer's, and stays).
    with target.dropping_new_lock():
        try:
            info = target.write(chunks, expect=ANY if force else None)
        except ConflictError as e:
            raise TargetExistsError(
                f"{target.url} already exists: export to another place, or give --force "
                "(force=True) to replace it"
            ) from e
    return Exported(target.url, header.generation, info.size)

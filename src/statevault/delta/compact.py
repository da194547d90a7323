"""Compaction of a delta save's plans: bounded packs per HEAD, bounded extents per buffer.

Amortised: a save merges only the *smallest* packs (and those less than half live) into its
own new pack once a HEAD would reference more than ``max_packs``, so the big base pack stays
put and a merge copies what changed recently; adjacent extents that move are coalesced into
one piece. The bytes come from the buffers being saved (never read back from storage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..transforms import Buffer
from .manifest import Index, PieceLoc
from .planner import BufferPlan, Extent, Planner

#: The planner's smallest piece (its default ``min_size``): extents per byte of a buffer that
#: the planner itself may produce, which the compaction backstop must allow.
MIN_PIECE = 16 * 1024

__all__ = ["Compaction", "compact_plan", "merge_set"]


def merge_set(plans: Iterable[BufferPlan], index: Index, max_packs: int) -> set[bytes]:
    """Packs whose live pieces this save copies into its own pack: the fragmented ones
    (less than half live) and, above ``max_packs``, the smallest until half are left."""
    live: dict[bytes, int] = {}
    seen: set[bytes] = set()
    for plan in plans:
        for e in plan.extents:
            loc = index.pieces.get(e.piece)
            if loc is not None and e.piece not in seen:
                seen.add(e.piece)
                live[loc.pack] = live.get(loc.pack, 0) + loc.length
    merge = {p for p, n in live.items() if n * 2 < index.packs[p].raw}
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

"""What a delta manifest says about where its state lives: packs, pieces, fragmentation.

``describe(reader)`` reads the index and the manifest sections of a HEAD (small sections;
no pack is read) for ``get_state_info()["delta"]`` and ``statevault info``.
"""

from __future__ import annotations

from typing import Any

from .planner import BufferPlan
from .reader import DeltaReader

__all__ = ["describe"]


def describe(reader: DeltaReader) -> dict[str, Any]:
    """Packs referenced (count, bytes), live fraction of their pieces, buffers and extents
    (total and the most of one buffer), inline bytes, packs retired and waiting for GC."""
    index = reader.index()
    buffers = extents = most = inline = 0
    for i in range(len(reader.header.sections)):
        for seg in reader.segments(i):
            if isinstance(seg, BufferPlan):
                buffers += 1
                extents += len(seg.extents)
                most = max(most, len(seg.extents))
            else:
                inline += memoryview(seg.data).nbytes
    raw = sum(p.raw for p in index.packs.values())
    live = sum(loc.length for loc in index.pieces.values())
    return {
        "packs": len(index.packs),
        "pack_bytes": sum(p.size for p in index.packs.values()),
        "pieces": len(index.pieces),
        "live_fraction": round(live / raw, 4) if raw else 1.0,
        "buffers": buffers,
        "extents": extents,
        "max_extents": most,
        "inline_bytes": inline,
        "retired_packs": len(index.retired),
    }

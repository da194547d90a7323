"""Which bytes of a buffer are already stored: a buffer as extents of immutable pieces.

Pure and I/O-free: given a buffer's bytes and the plan this writer last saved or loaded for it,
``Planner.plan`` returns the buffer's new plan and the pieces that must be written. A plan only
names pieces by their keyed hash, so a planner never needs the old bytes.

Interface contract (shared by the delta frame store):
- ``Extent(piece, offset, length)``: ``length`` bytes of piece ``piece`` from ``offset``.
- ``BufferPlan.extents`` concatenated give the buffer's bytes exactly.
- ``Planner.plan(data, previous)`` -> ``(plan, new_pieces)``, ``new_pieces`` a list of
  ``(piece_id, bytes-like)`` in the order of first use; every extent's piece is either in
  ``previous``'s extents or in ``new_pieces``.
- Piece ids are ``Planner.piece_id(bytes)``: a keyed hash (the key is the planner's), 16 bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..transforms import Buffer

__all__ = ["BufferPlan", "Extent", "Planner"]

ID_SIZE = 16


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes of the piece named ``piece``, starting ``offset`` bytes into it."""

    piece: bytes
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class BufferPlan:
    """One buffer as extents of pieces, and its size (the sum of the extents' lengths)."""

    extents: tuple[Extent, ...]
    size: int


class Planner:
    """Plans buffers into pieces (placeholder: one piece per distinct buffer)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def piece_id(self, data: Buffer) -> bytes:
        """The piece's name: a keyed BLAKE2b-128 of its bytes (reveals nothing without the key)."""
        return hashlib.blake2b(data, key=self._key, digest_size=ID_SIZE).digest()

    def plan(
        self, data: Buffer, previous: BufferPlan | None
    ) -> tuple[BufferPlan, list[tuple[bytes, Buffer]]]:
        """The plan of ``data`` and the pieces to write (those ``previous`` does not name)."""
        view = memoryview(data).cast("B")
        pid = self.piece_id(view)
        plan = BufferPlan((Extent(pid, 0, len(view)),), len(view))
        if previous is not None and any(e.piece == pid for e in previous.extents):
            return plan, []
        return plan, [(pid, view)]

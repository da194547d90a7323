"""What the commit layer hands its callers: a framed save waiting to be written (``Pending``),
the current state as read (``Current``), and the damaged-object signal (``Unreadable``).

Kept apart from ``commit`` so that module stays about the protocol itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..delta.store import DeltaSave
from ..errors import CorruptStateError
from ..storage import ObjectInfo
from ..transforms import Buffer

__all__ = ["Current", "Pending", "Unreadable"]


@dataclass(frozen=True)
class Pending:
    """A framed save waiting to be written: chunks, generation, expectation (and delta)."""

    chunks: list[Buffer]
    generation: int
    expect: object
    delta: DeltaSave | None = None
    # Overwrite mode, yet compare-and-swap on the probed HEAD: the save shares that HEAD's
    # pieces, whose packs another writer may retire and collect once it is replaced. A
    # refusal is not a conflict to raise: the caller saves again, self-contained.
    fenced: bool = False


@dataclass(frozen=True)
class Current:
    """The current state as read from the store, and the store's info of that object."""

    state: dict[str, Any]
    generation: int
    info: ObjectInfo


class Unreadable(Exception):
    """``read_current(fallback=True)``: the stored object is damaged; ``error`` says how."""

    def __init__(self, error: CorruptStateError, info: ObjectInfo) -> None:
        super().__init__(str(error))
        self.error = error
        self.info = info

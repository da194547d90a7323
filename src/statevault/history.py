"""Retained versions of a state: ring slots in a sidecar named after it.

With ``keep_versions=N`` every saved frame is also written to slot ``generation % (N + 1)`` of
``<url>.versions/``; the slot of generation ``g`` is next written by generation ``g + N + 1``,
which is how the oldest version beyond N is pruned: by replacement, never by a delete that a
concurrent reader could race, and at the cost of exactly one more write per save (no listing,
no delete request). A slot holds a complete frame, so a version needs nothing else to be read;
its header says which generation it is, so a slot overwritten since a listing is recognised
instead of being returned as the wrong version.

The HEAD is written first and the slot after it: a save that fails (conflict, storage error)
never touches the history, and a crash between the two only leaves that one generation out of
the history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import CorruptStateError, StateError, StateNotFoundError
from .frame import FrameHeader
from .storage import ObjectInfo, Store

if TYPE_CHECKING:
    from .transforms import Buffer

__all__ = ["History", "Version"]

SIDECAR = ".versions"
#: Garbage collection probes slots past its own ring until this many in a row are empty
#: (generations can skip, so one empty slot does not end a larger ring) ...
PROBE_EMPTY = 4
#: ... and never past this slot (a bound on the requests of one collection).
_PROBE_LIMIT = 4096


@dataclass(frozen=True)
class Version:
    """One retained version: where it is and what its frame header says."""

    generation: int
    created: datetime
    size: int
    slot: int
    store: Store

    def as_dict(self) -> dict[str, object]:
        return {
            "generation": self.generation,
            "created": self.created,
            "size": self.size,
            "slot": self.slot,
            "url": self.store.url,
        }


class History:
    """The ring of version slots beside one state. Thread-safety is the manager's lock."""

    def __init__(self, store: Store, keep: int) -> None:
        if keep < 0:
            raise ValueError(f"keep_versions must be 0 or more, not {keep}")
        self.keep = keep
        self._store = store
        self._slots = [store.sibling(f"{SIDECAR}/{i}") for i in range(keep + 1)] if keep else []

    @property
    def enabled(self) -> bool:
        return self.keep > 0

    def slot_of(self, generation: int) -> Store:
        return self._slots[generation % len(self._slots)]

    def record(self, chunks: Sequence[Buffer], generation: int, written: ObjectInfo) -> None:
        """Keep the frame just saved as generation ``generation`` (one more write; a hard link
        on local files)."""
        if self.enabled:
            self._store.keep_copy(self.slot_of(generation), chunks, written)

    def versions(self, header_of: Callable[[Store], FrameHeader]) -> list[Version]:
        """Every retained version whose header reads, newest first (one header read per slot)."""
        return self.scan(header_of)[0]

    def scan(
        self, header_of: Callable[[Store], FrameHeader]
    ) -> tuple[list[Version], list[tuple[int, StateError]]]:
        """Readable versions newest first, and the slots whose header is damaged (with why).

        Empty slots are neither: they were never written.
        """
        found: list[Version] = []
        damaged: list[tuple[int, StateError]] = []
        for index, slot in enumerate(self._slots):
            try:
                header = header_of(slot)
            except StateNotFoundError:
                continue
            except StateError as e:
                damaged.append((index, e))
                continue
            created = datetime.fromtimestamp(header.created, UTC)
            found.append(Version(header.generation, created, header.size, index, slot))
        found.sort(key=lambda v: v.generation, reverse=True)
        return found, damaged

    def headers(
        self, header_of: Callable[[Store], FrameHeader], *, beyond: int = 0
    ) -> list[FrameHeader]:
        """The header of every slot that reads (empty and damaged slots left out).

        ``beyond``: also probe the slots after this ring's, until that many in a row are
        empty: another manager on the same state may keep more versions (a larger ring), and
        garbage collection must see its versions too (the stores have no listing).
        """
        out: list[FrameHeader] = []
        for slot in self._slots:
            try:
                out.append(header_of(slot))
            except (StateNotFoundError, CorruptStateError):
                continue  # never written, or unreadable for good; a storage error propagates
        empty, i = 0, len(self._slots)
        while empty < beyond and i < _PROBE_LIMIT:
            try:
                out.append(header_of(self._store.sibling(f"{SIDECAR}/{i}")))
                empty = 0
            except StateNotFoundError:
                empty += 1
            except CorruptStateError:
                empty = 0
            i += 1
        return out

    def find(self, generation: int, header_of: Callable[[Store], FrameHeader]) -> Store | None:
        """The slot holding ``generation``, or None if it is no longer retained."""
        if not self.enabled:
            return None
        slot = self.slot_of(generation)
        try:
            header = header_of(slot)
        except StateError:
            return None
        return slot if header.generation == generation else None

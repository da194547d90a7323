"""Recovery: the retained versions of a state, and falling back to them.

Wraps ``History`` (the ring of version slots, history.py): after a save lands, its frame is
kept in its slot (``record``; a failure there is a warning, the save stands); a load whose
current object is unreadable takes the newest readable retained version (``fall_back``); a
version can be read by generation (``read_version``) and listed (``versions``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..delta.reader import DeltaReader
from ..errors import StateError, StateNotFoundError
from ..frame import MANIFEST_VERSION, FrameHeader
from ..history import PROBE_EMPTY, History, Version
from ..storage import ObjectInfo, Store
from ..transforms import Buffer
from .commit import Commit, Unreadable

__all__ = ["Fallback", "NothingReadable", "Recovery"]

log = logging.getLogger("statevault")


@dataclass(frozen=True)
class Fallback:
    """What a load fell back to: the state, its generation, and what it had to skip."""

    state: dict[str, Any]
    generation: int
    skipped: list[str]


class Recovery:
    """Retained versions over a commit layer (which it tells when a load fell back)."""

    def __init__(self, commit: Commit, keep_versions: int) -> None:
        self.commit = commit
        self.frames = commit.frames
        self.history = History(commit.frames.store, keep_versions)
        # Why the last save's version could not be kept (None: it was, or nothing tried yet).
        self.last_error: str | None = None
        commit.has_readable_version = self.has_readable_version

    @property
    def keep(self) -> int:
        return self.history.keep

    @property
    def url(self) -> str:
        return self.frames.url

    def record(self, chunks: Sequence[Buffer], generation: int, info: ObjectInfo) -> None:
        """Keep the frame just saved in its slot; a failure is logged, the save stands."""
        try:
            self.history.record(chunks, generation, info)
        except (StateError, OSError) as e:  # the save itself succeeded: say so, do not fail it
            self.last_error = f"generation {generation}: {type(e).__name__}: {e}"
            log.warning(
                "%s: generation %d was saved but not kept in history: %s",
                self.url,
                generation,
                e,
            )
        else:
            self.last_error = None

    def slot_generations(self) -> list[tuple[int, int]]:
        """(format version, generation) of every readable version slot (garbage collection's
        generation fence: one header read per slot)."""
        headers = self.history.headers(self.frames.header_of, beyond=PROBE_EMPTY)
        return [(h.version, h.generation) for h in headers]

    def collect_garbage(self, *, force: bool = False) -> int:
        """Delete retired delta packs no HEAD or retained version needs (see DeltaStore)."""
        delta = self.commit.delta
        if delta is None:
            return 0
        deleted = delta.collect(self.slot_generations, force=force)
        return deleted + delta.sweep(self.named_packs, force=force)

    def named_packs(self) -> set[bytes] | None:
        """Every pack the current HEAD, every readable version slot and their retired lists
        name (the orphan sweep keeps them); None if the HEAD cannot be read."""
        names: set[bytes] = set()

        def add(reader: Any) -> None:
            if isinstance(reader, DeltaReader):
                index = reader.index()
                names.update(index.packs)
                names.update(r.name for r in index.retired)

        try:
            add(self.frames.ranged_reader()[0])
        except StateNotFoundError:
            pass
        except StateError:
            return None  # a HEAD this writer cannot read may name any pack: keep them all

        def header_of(store: Store) -> FrameHeader:
            header = self.frames.header_of(store)
            if header.version == MANIFEST_VERSION:  # a plain frame names no pack: not read
                data, _ = store.read()
                add(self.frames.reader(data))
            return header

        self.history.headers(header_of, beyond=PROBE_EMPTY)
        return names

    def has_readable_version(self) -> bool:
        """Whether any retained version decodes (a damaged current state may then be
        replaced by a running writer: the last good state survives in the history)."""
        for version in self.history.scan(self.frames.header_of)[0]:
            try:
                data, _ = version.store.read()
                self.commit.decode(data)
            except StateError:
                continue
            return True
        return False

    def versions(self) -> list[Version]:
        """Every retained version whose header reads, newest first (one read per slot)."""
        return self.history.versions(self.frames.header_of)

    def find(self, version: int) -> Store | None:
        """The slot holding ``version``, or None if it is not retained."""
        return self.history.find(version, self.frames.header_of)

    def read_version(self, version: int) -> dict[str, Any]:
        """Decode retained ``version``; ``StateNotFoundError`` if it is not (any more) kept."""
        slot = self.find(version)
        if slot is None:
            raise StateNotFoundError(
                f"version {version} of {self.url} is not retained: list_versions() shows "
                "the generations that are"
            )
        data, _ = slot.read()
        state, generation = self.commit.decode(data)
        if generation != version:  # the slot was reused between the lookup and the read
            raise StateNotFoundError(
                f"version {version} of {self.url} is no longer retained (its slot now holds "
                f"generation {generation}): list_versions() shows the generations that are"
            )
        return state

    def fall_back(self, unreadable: Unreadable) -> Fallback:
        """The newest readable retained version, for a current object that is unreadable.

        Tells the commit layer (the next save keeps the bad bytes aside before replacing
        them). Raises the unreadable object's error when no version reads; either way the
        skipped objects are in the log and in the result or ``skipped`` of the error.
        """
        error = unreadable.error
        skipped = [f"the current state ({type(error).__name__}: {error})"]
        versions, damaged = self.history.scan(self.frames.header_of)
        skipped += [f"version slot {i} ({type(e).__name__}: {e})" for i, e in damaged]
        for version in versions:
            try:
                data, _ = version.store.read()
                state, generation = self.commit.decode(data)
            except StateError as e:
                skipped.append(f"version {version.generation} ({type(e).__name__}: {e})")
                continue
            newest = max((v.generation for v in versions), default=0)
            self.commit.fell_back(unreadable.info, generation, newest)
            log.error(
                "%s: the current state is unreadable; loaded retained version %d instead. "
                "Skipped: %s. The next save keeps the unreadable bytes at %s.unreadable",
                self.url,
                generation,
                "; ".join(skipped),
                self.url,
            )
            return Fallback(state, generation, skipped)
        log.error(
            "%s: nothing readable: %s", self.url, "; ".join(skipped) or "no retained versions"
        )
        raise NothingReadable(error, skipped)


class NothingReadable(Exception):
    """No retained version reads either; ``error`` is the current object's, to raise."""

    def __init__(self, error: StateError, skipped: list[str]) -> None:
        super().__init__(str(error))
        self.error = error
        self.skipped = skipped

"""The commit protocol: compare-and-swap saves between writers, and their recovery paths.

A ``Commit`` remembers what this writer last saw of the stored state (the store's version
token and the frame's generation), derives from it the expectation of the next write and the
next generation, and turns a refused write into ``ConflictError`` unless the refusal is one of
two things that are not another writer:

- *landed but unacknowledged*: our own previous write reported a storage error yet landed (a
  timeout after the PUT, an fsync error after the rename); its first bytes are remembered, so
  the stored object is recognised as ours;
- *damaged*: the stored object went bad (bit rot, a truncating copy); it is kept aside at
  ``<url>.unreadable`` and replaced.

It also reads the current state (``read_current``), so that a load's observation and a save's
expectation come from the same place. A save is ``prepare`` (the expectation; one ranged read
on a first save) then ``write``; ``offline`` frames a snapshot without asking the store, for
the failover layer when the store cannot even be asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import (
    ConflictError,
    CorruptStateError,
    StateError,
    StateNotFoundError,
    StorageError,
    UnsupportedFormatError,
)
from ..frame import HEADER_PROBE, NeedMoreBytes, parse_header
from ..storage import ANY, ObjectInfo
from ..transforms import Buffer
from .framestore import FrameStore, frame_prefix
from .snapshot import Snapshot

__all__ = ["Commit", "Current", "OnConflict", "Pending", "Unreadable"]

log = logging.getLogger("statevault")

OnConflict = Literal["raise", "overwrite"]
Decode = Callable[[Any], tuple[dict[str, Any], int]]


@dataclass(frozen=True)
class Pending:
    """A framed save waiting to be written: its chunks, generation and write expectation."""

    chunks: list[Buffer]
    generation: int
    expect: object


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


class Commit:
    """What this writer last saw, and how its next write is checked against the store.

    Not thread-safe by itself: the manager's lock covers every call.
    """

    def __init__(self, frames: FrameStore, decode: Decode, on_conflict: OnConflict) -> None:
        if on_conflict not in ("raise", "overwrite"):
            raise ValueError(f"on_conflict must be 'raise' or 'overwrite', not {on_conflict!r}")
        self.frames = frames
        self.decode = decode
        self.on_conflict: OnConflict = on_conflict
        # What this writer last saw of the stored state: the store's version token and the
        # frame's generation. ``observed`` False means "not looked yet".
        self.token: str | None = None
        self.generation: int | None = None
        self.observed = False
        # Token of a current object that could not be read when a load fell back: the next
        # save keeps its bytes aside (``<url>.unreadable``) before replacing it.
        self.unreadable_token: str | None = None
        # The first bytes of a frame whose write reported a storage error: it may have landed.
        self.unacknowledged: bytes | None = None

    @property
    def url(self) -> str:
        return self.frames.url

    def observe(self, token: str | None, generation: int | None) -> None:
        """Record what the store holds now (after a load, a save, or seeing nothing)."""
        self.token = token
        self.generation = generation
        self.observed = True

    # -- reading

    def read_current(self, *, fallback: bool) -> Current:
        """Read and decode the current state, and observe it.

        Raises ``StateNotFoundError`` (and observes "nothing"), ``StorageError``, decode errors;
        a damaged object raises its ``CorruptStateError``, or ``Unreadable`` with ``fallback``.
        """
        try:
            data, info = self.frames.read()
        except StateNotFoundError:
            self.observe(None, None)
            raise
        try:
            state, generation = self.decode(data)
        except CorruptStateError as e:  # a newer format is not damage: it raises
            if not fallback:
                raise
            raise Unreadable(e, info) from e
        self.observe(info.token, generation)
        return Current(state, generation, info)

    def stored_generation(self) -> int:
        """The generation of the stored frame; 0 for a legacy or unreadable object."""
        try:
            return self.frames.header().generation
        except (CorruptStateError, UnsupportedFormatError, StateNotFoundError):
            return 0

    def fell_back(self, unreadable: ObjectInfo, generation: int) -> None:
        """A load fell back to ``generation`` over the unreadable ``unreadable`` object.

        The next save replaces that object only if it is still the one seen, and keeps its
        bytes aside first.
        """
        self.observe(unreadable.token, generation)
        self.unreadable_token = unreadable.token

    # -- saving

    def expectation(self) -> tuple[object, int]:
        """What the store must still hold for this save to go ahead, and the next generation."""
        if self.observed and self.on_conflict == "raise":
            expect: object = self.token  # None: we saw no state, so none may exist now
            return expect, (self.generation or 0) + 1
        # One request on S3 (a ranged GET carries the ETag): a first save costs two in all.
        head = self.frames.store.read_head(HEADER_PROBE)
        if head is None:
            return None, 1
        prefix, info = head
        try:
            generation = parse_header(prefix, total_size=info.size).generation
        except NeedMoreBytes:
            generation = self.stored_generation()
        except CorruptStateError:
            generation = 0  # legacy JSON or damage: the write below still checks the token
        # UnsupportedFormatError propagates: a newer writer's state is not ours to replace.
        if self.on_conflict == "overwrite":
            # Last writer wins, but generations still only go up.
            if self.observed and info.token != self.token:
                log.warning(
                    "%s: overwriting generation %d written by another writer (this manager "
                    "last saw generation %s)",
                    self.url,
                    generation,
                    self.generation,
                )
            return ANY, max(generation, self.generation or 0) + 1
        return info.token, generation + 1

    def prepare(self, snapshot: Snapshot, min_generation: int = 1) -> Pending:
        """Frame ``snapshot`` for the next write (asks the store on a first save).

        ``min_generation``: a floor from outside (a spooled frame's generation + 1).
        Raises ``StorageError`` when the store cannot be asked; then use ``offline``.
        """
        expect, generation = self.expectation()
        generation = max(generation, min_generation)
        return Pending(self._frame(snapshot, generation), generation, expect)

    def offline(self, snapshot: Snapshot, min_generation: int = 1) -> Pending:
        """Frame ``snapshot`` from memory alone (the store could not be asked): not writable
        to the primary as it is (no expectation), only to a fallback."""
        generation = max((self.generation or 0) + 1, min_generation)
        return Pending(self._frame(snapshot, generation), generation, None)

    def _frame(self, snapshot: Snapshot, generation: int) -> list[Buffer]:
        return self.frames.build(
            snapshot.sections,
            generation=generation,
            meta=snapshot.meta,
            transforms=snapshot.transforms,
        )

    def write(self, pending: Pending) -> ObjectInfo:
        """Write a prepared frame; observe it. Raises ``ConflictError`` or ``StorageError``.

        On a storage error the frame's first bytes are remembered: if the write landed after
        all, the next save recognises the stored object as its own instead of a conflict.
        """
        self.keep_unreadable_aside(pending.expect)
        try:
            info = self._write(pending)
        except ConflictError:
            raise
        except StorageError:
            self.unacknowledged = frame_prefix(pending.chunks)
            raise
        self.unacknowledged = None
        self.observe(info.token, pending.generation)
        self.unreadable_token = None
        return info

    def _write(self, pending: Pending) -> ObjectInfo:
        chunks, generation = pending.chunks, pending.generation
        try:
            return self.frames.write(chunks, pending.expect)
        except ConflictError as e:
            landed = self.unacknowledged_landed()
            if landed is not None:
                return self.frames.write(chunks, landed)
            damaged = self.damaged_current()
            if damaged is not None:
                # Not another writer: the object went bad (bit rot, a truncating copy). A
                # running service must still be able to save, and nothing readable is lost:
                # the bad bytes are kept aside first.
                log.error(
                    "%s: the stored state changed into something unreadable; keeping it at "
                    "%s.unreadable and saving generation %d over it",
                    self.url,
                    self.url,
                    generation,
                )
                self.unreadable_token = damaged
                self.keep_unreadable_aside(damaged)
                return self.frames.write(chunks, damaged)
            found = self.stored_generation() if self.frames.store.info() is not None else None
            expected = self.generation if self.observed else None
            raise ConflictError(
                f"{self.url} was replaced by another writer: stored generation is {found}, "
                f"this manager last saw {expected}. Load the state again, merge your changes "
                "and save, or create the manager with on_conflict='overwrite'.",
                expected=expected,
                found=found,
            ) from e

    # -- recovery after a refused write

    def unacknowledged_landed(self) -> str | None:
        """If the stored object is the frame of our last save that reported a failure (the
        write landed but its answer was lost), return its token: then this is no conflict,
        the object is ours."""
        mine = self.unacknowledged
        if mine is None:
            return None
        head = self.frames.store.read_head(len(mine))
        if head is None or head[0] != mine:
            return None
        log.warning("%s: the save reported as failed had landed after all", self.url)
        self.unacknowledged = None
        return head[1].token

    def damaged_current(self) -> str | None:
        """The token of the stored object if it is damaged beyond reading, else None.

        Only called after a refused write (rare), so reading the whole object is acceptable.
        """
        try:
            data, info = self.frames.read()
        except StateError:
            return None
        try:
            self.decode(data)
        except CorruptStateError:
            return info.token
        except StateError:
            return None  # readable bytes this process cannot use (keys, types): not ours to judge
        return None

    def keep_unreadable_aside(self, expect: object) -> None:
        """Before replacing a current object that could not be read, copy it to
        ``<url>.unreadable`` for inspection (each such copy replaces the previous one)."""
        if self.unreadable_token is None or expect != self.unreadable_token:
            return
        store = self.frames.store
        try:
            data, info = store.read()
        except StateError:
            return
        if info.token != self.unreadable_token:
            return
        aside = store.sibling(".unreadable")
        aside.write([data])
        log.error(
            "%s: kept the unreadable state aside at %s before replacing it", self.url, aside.url
        )

"""The commit protocol: compare-and-swap saves between writers, and their recovery paths.

A ``Commit`` remembers what this writer last saw of the stored state (version token and
generation), derives the next write's expectation and generation from it, and turns a refused
write into ``ConflictError`` unless the refusal is not another writer: *landed but
unacknowledged* (one of our writes reported an error yet landed; the first bytes of each since
the last acknowledged one are remembered, so it is recognised as ours) or *damaged* (bit rot,
a truncating copy: kept aside at ``<url>.unreadable`` and replaced).

It reads the current state (``read_current``) so that a load's observation and a save's
expectation come from one place; a save is ``prepare`` then ``write``; ``offline`` frames a
snapshot for the failover layer when the store cannot be asked. ``delta=``: delta saves."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from ..delta.store import DeltaStore
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
from .aside import copy_aside, damaged_error, damaged_token, missing_key, replaceable
from .framestore import FrameStore, frame_prefix
from .legacy import is_frame
from .pending import Current, Pending, Unreadable
from .snapshot import Snapshot

__all__ = ["Commit", "Current", "OnConflict", "OnUnreadable", "Pending", "Unreadable"]

log = logging.getLogger("statevault")

OnConflict = Literal["raise", "overwrite"]
OnUnreadable = Literal["raise", "replace"]
#: How many unacknowledged frames (since the last acknowledged write) are remembered.
MAX_UNACKNOWLEDGED = 16
Decode = Callable[[Any], tuple[dict[str, Any], int]]


class Commit:
    """What this writer last saw, and how its next write is checked against the store.

    Not thread-safe by itself: the manager's lock covers every call."""

    def __init__(
        self,
        frames: FrameStore,
        decode: Decode,
        on_conflict: OnConflict,
        on_unreadable: OnUnreadable = "raise",
        delta: DeltaStore | None = None,
    ) -> None:
        if on_conflict not in ("raise", "overwrite"):
            raise ValueError(f"on_conflict must be 'raise' or 'overwrite', not {on_conflict!r}")
        if on_unreadable not in ("raise", "replace"):
            raise ValueError(f"on_unreadable must be 'raise' or 'replace', not {on_unreadable!r}")
        self.frames = frames
        self.decode = decode
        self.delta = delta
        self.on_conflict: OnConflict = on_conflict
        self.on_unreadable: OnUnreadable = on_unreadable
        # What this writer last saw of the stored state: the store's version token and the
        # frame's generation. ``observed`` False means "not looked yet".
        self.token: str | None = None
        self.generation: int | None = None
        self.observed = False
        # Token of a current object that could not be read when a load fell back: the next
        # save keeps its bytes aside (``<url>.unreadable``) before replacing it.
        self.unreadable_token: str | None = None
        # The first bytes and generation of every frame whose write reported a storage error
        # since the last acknowledged write (oldest first, bounded): any of them may have
        # landed, and recognising it must survive further failures.
        self.unacknowledged: list[tuple[bytes, int]] = []
        # The highest generation that may exist beyond what was observed (a write with an
        # unknown outcome, a spooled frame, a damaged object a load fell back over): never
        # used twice. A write refused by a conflict never landed, so its generation is free.
        self.issued = 0
        # A stored object this writer could not read (token, why): never replaced unless
        # ``on_unreadable="replace"`` (or a load fell back to a readable retained version).
        self.refused: tuple[str, StateError] | None = None
        # Whether a readable retained version exists (set by the recovery layer): bit rot
        # under a running writer is replaced only then (or with ``on_unreadable="replace"``).
        self.has_readable_version: Callable[[], bool] = lambda: False
        # Token of a stored legacy JSON document: the first save keeps a copy of it at
        # ``<url>.legacy.json`` before converting it to a frame.
        self.legacy_token: str | None = None
        self.head_seen: tuple[str | None, bytes, int] | None = None  # expectation's probe

    @property
    def url(self) -> str:
        return self.frames.url

    def observe(self, token: str | None, generation: int | None) -> None:
        """Record what the store holds now (after a load, a save, or seeing nothing)."""
        if token is None:
            self.issued = 0  # nothing stored (a first run, a delete): generations restart
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
            self.refused = (info.token, e)
            if not fallback:
                raise
            raise Unreadable(e, info) from e
        except StateError as e:  # a wrong or missing key, a newer format, unknown types
            self.refused = (info.token, e)
            raise
        self.refused = None
        if generation == 0 and not is_frame(data):
            self.legacy_token = info.token
        self.observe(info.token, generation)
        if self.delta is not None:
            self.delta.learn(data, info.token, generation)
        return Current(state, generation, info)

    def stored_generation(self) -> int:
        """The generation of the stored frame; 0 for a legacy or unreadable object."""
        try:
            return self.frames.header().generation
        except (CorruptStateError, UnsupportedFormatError, StateNotFoundError):
            return 0

    def fell_back(self, unreadable: ObjectInfo, generation: int, newest: int = 0) -> None:
        """A load fell back to ``generation`` over the unreadable ``unreadable`` object.

        The next save replaces that object only if it is still the one seen, and keeps its
        bytes aside first. Its generation is above every one seen (``newest``: the newest
        retained; the damaged object's own header, if it reads), so none is used twice.
        """
        self.observe(unreadable.token, generation)
        self.issued = max(self.issued, newest, self.stored_generation())
        self.unreadable_token = unreadable.token
        self.refused = None  # damage with a readable version to continue from: replaceable

    # -- saving

    def expectation(self, *, strict: bool = False) -> tuple[object, int]:
        """What the store must still hold for this save to go ahead, and the next generation.

        ``strict``: compare-and-swap even with ``on_conflict="overwrite"`` (``update()``).
        Raises ``UnreadableStateError`` when the stored object is one this writer could not
        read (and ``on_unreadable`` is ``"raise"``), ``UnsupportedFormatError`` for a newer one.
        """
        self.check_replaceable()
        self.head_seen = None
        if self.observed and (self.on_conflict == "raise" or strict):
            expect: object = self.token  # None: we saw no state, so none may exist now
            return expect, max(self.generation or 0, self.issued) + 1
        # One request on S3 (a ranged GET carries the ETag): a first save costs two in all.
        head = self.frames.store.read_head(HEADER_PROBE)
        if head is None:
            self.head_seen = (None, b"", 0)
            return None, max(1, self.issued + 1)
        prefix, info = head
        self.head_seen = (info.token, prefix, info.size)
        try:
            header = parse_header(prefix, total_size=info.size)
            generation = header.generation
            if self.frames.keyring is None and header.encrypted_with(self.frames.registry):
                # Never plaintext over an encrypted state: this writer has no key to read it.
                self.refuse(info.token, missing_key(self.url))
        except NeedMoreBytes:
            generation = self.stored_generation()
        except CorruptStateError:
            generation = 0  # legacy JSON or damage: the write below still checks the token
            if prefix.lstrip().startswith(b"{"):
                self.legacy_token = info.token
        # UnsupportedFormatError propagates: a newer writer's state is not ours to replace.
        generation = max(generation, self.issued)
        if self.on_conflict == "overwrite" and not strict:
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

    def refuse(self, token: str, error: StateError) -> None:
        """Remember that the stored object ``token`` is one this writer cannot read; with
        ``on_unreadable="raise"`` raise ``UnreadableStateError`` now."""
        self.refused = (token, error)
        self.check_replaceable()

    def check_replaceable(self) -> None:
        """Raise ``UnreadableStateError`` if the next write would replace an object this
        writer could not read (unless ``on_unreadable="replace"``; see ``aside.replaceable``)."""
        if self.refused is None:
            return
        if not replaceable(self.frames.store, *self.refused, self.on_unreadable):
            self.refused = None  # replaced or deleted since: the write's own check applies
        else:
            self.unreadable_token = self.refused[0]  # kept aside, then replaced on purpose

    def prepare(
        self,
        snapshot: Snapshot,
        min_generation: int = 1,
        *,
        strict: bool = False,
        share: bool = True,
    ) -> Pending:
        """Frame ``snapshot`` for the next write (asks the store on a first save).

        ``min_generation``: a floor from outside (a spooled frame's generation + 1).
        ``share``: False makes a delta save self-contained (its pack holds every piece).
        Raises ``StorageError`` when the store cannot be asked; then use ``offline``.
        """
        expect, generation = self.expectation(strict=strict)
        generation = max(generation, min_generation)
        if self.delta is None:
            return Pending(self._frame(snapshot, generation), generation, expect)
        # Pieces are shared only with the HEAD replaced (overwrite: the one probed); over a
        # HEAD this writer could not read (kept aside) none are shared nor its packs retired.
        base = self.head_seen[0] if expect is ANY and self.head_seen else expect
        aside = self.unreadable_token is not None and expect == self.unreadable_token
        if not share:
            base = None
        head, save = self.delta.prepare_snapshot(snapshot, generation, base, self.head_seen, aside)
        if expect is ANY and save.reused:
            # Sharing the probed HEAD's pieces is safe only while it is the HEAD: once another
            # writer replaces it, its packs are retired and may be collected after the grace
            # period, however long this writer takes to get here. So the write is a
            # compare-and-swap on the probed token even in overwrite mode (``fenced``).
            return Pending(head, generation, base, save, fenced=True)
        return Pending(head, generation, expect, save)

    def offline(self, snapshot: Snapshot, min_generation: int = 1) -> Pending:
        """Frame ``snapshot`` from memory alone (the store could not be asked): not writable
        to the primary as it is (no expectation), only to a fallback."""
        generation = max(max(self.generation or 0, self.issued) + 1, min_generation)
        self.issued = max(self.issued, generation)
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
        self.keep_legacy_copy(pending.expect)
        try:
            if pending.delta is None or self.delta is None:
                info = self._write(pending)
            else:  # the pack, then the HEAD
                info = self.delta.write(pending.delta, lambda: self._write(pending))
        except ConflictError:
            raise
        except StorageError:
            # Unknown outcome: it may have landed, so its generation is never used again.
            self.issued = max(self.issued, pending.generation)
            self.unacknowledged.append((frame_prefix(pending.chunks), pending.generation))
            del self.unacknowledged[:-MAX_UNACKNOWLEDGED]
            raise
        self.unacknowledged.clear()
        self.observe(info.token, pending.generation)
        self.unreadable_token = None
        self.refused = None
        return info

    def _write(self, pending: Pending) -> ObjectInfo:
        chunks, generation = pending.chunks, pending.generation
        try:
            return self.frames.write(chunks, pending.expect)
        except ConflictError as e:
            mine = self.landed(chunks)
            if mine is not None:
                # This very write landed and its answer was lost; the client's retry was then
                # refused by our own object (S3: 412 on a retried conditional PUT).
                log.warning("%s: the write was refused by its own landed copy", self.url)
                return mine
            landed = self.unacknowledged_landed()
            if landed is not None:
                return self.frames.write(chunks, landed)
            damaged = damaged_token(self.frames.read, self.decode)
            if damaged is not None and not (
                self.on_unreadable == "replace" or self.has_readable_version()
            ):
                raise damaged_error(self.url) from e
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

    def landed(self, chunks: list[Buffer]) -> ObjectInfo | None:
        """The stored object's info if it is exactly the frame in ``chunks`` (first bytes)."""
        mine = frame_prefix(chunks)
        head = self.frames.store.read_head(len(mine))
        if head is None or head[0] != mine:
            return None
        return head[1]

    def unacknowledged_landed(self) -> str | None:
        """If the stored object is the frame of one of our saves that reported a failure
        since the last acknowledged one (the write landed but its answer was lost), observe
        it and return its token: then this is no conflict, the object is ours."""
        if not self.unacknowledged:
            return None
        longest = max(len(p) for p, _ in self.unacknowledged)
        head = self.frames.store.read_head(longest)
        if head is None:
            return None
        for prefix, generation in reversed(self.unacknowledged):
            if head[0][: len(prefix)] == prefix:
                log.warning(
                    "%s: the save of generation %d reported as failed had landed after all",
                    self.url,
                    generation,
                )
                self.observe(head[1].token, generation)
                return head[1].token
        return None

    def keep_legacy_copy(self, expect: object) -> None:
        """Before the first save converts a legacy JSON document, copy it to
        ``<url>.legacy.json`` (once: an existing copy is the original and is kept)."""
        token, self.legacy_token = self.legacy_token, None
        if token is not None and (expect is ANY or expect == token):
            copy_aside(self.frames.store, token, ".legacy.json", what="the legacy JSON", once=True)

    def keep_unreadable_aside(self, expect: object) -> None:
        """Before replacing a current object that could not be read, copy it to
        ``<url>.unreadable`` for inspection (each such copy replaces the previous one).
        Best effort: the new state is saved (or spooled) even if the copy fails."""
        if self.unreadable_token is not None and expect == self.unreadable_token:
            copy_aside(self.frames.store, self.unreadable_token, ".unreadable")

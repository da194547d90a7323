"""Failover: the primary storage plus a local spool, as one wrapper around the lower layers.

A save goes to the primary through the commit layer (and, once landed, into the retained
versions); when the primary cannot be reached (unreachable, permission denied, disk full) the
same frame goes to the local spool (spool.py) and the save still reports the failure. The next
successful save or ``flush()`` empties the spool; a load takes the newer of primary and spool.
Without a spool (``spool=None``) this layer only passes calls through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, StateError, StateNotFoundError, StorageError
from ..frame import parse_header
from ..spool import Spool
from .commit import Current, Pending, Unreadable
from .recovery import Fallback, Recovery
from .snapshot import Snapshot

__all__ = ["Failover", "Loaded"]

log = logging.getLogger("statevault")


@dataclass(frozen=True)
class Loaded:
    """A loaded state and where it came from: "primary", "spool" or "version N"."""

    state: dict[str, Any]
    source: str
    fallback: Fallback | None = None


class Failover:
    """Primary (through ``Recovery`` and ``Commit``) plus an optional spool."""

    def __init__(self, recovery: Recovery, spool: Spool | None) -> None:
        self.recovery = recovery
        self.commit = recovery.commit
        self.spool = spool

    @property
    def url(self) -> str:
        return self.commit.url

    # -- saving

    def save(self, snapshot: Snapshot) -> int:
        """Commit ``snapshot`` to the primary, else spool it; return the new generation.

        Raises like ``Commit.write``; a ``StorageError`` says where the state was spooled.
        """
        floor = self.spooled_generation() + 1
        try:
            pending = self.commit.prepare(snapshot, floor)
        except StorageError as e:
            raise self._to_spool(self.commit.offline(snapshot, floor), e) from e
        try:
            info = self.commit.write(pending)
        except ConflictError:
            raise
        except StorageError as e:
            raise self._to_spool(pending, e) from e
        self.recovery.record(pending.chunks, pending.generation, info)
        if self.spool is not None and self.spool.info() is not None:
            # This save is newer than anything spooled: the spool has done its job.
            self.spool.clear()
            log.info("%s is reachable again; cleared the spooled state", self.url)
        log.debug("saved %s generation %d (%d bytes)", self.url, pending.generation, info.size)
        return pending.generation

    def _to_spool(self, pending: Pending, error: StorageError) -> StateError:
        """Keep a frame the primary refused in the local spool; return the error to raise."""
        if self.spool is None:
            return error
        try:
            self.spool.put(pending.chunks)
        except StateError as spool_error:
            log.error("could not spool the state of %s either: %s", self.url, spool_error)
            return error
        # No log here: the error raised says where the state went, and save_state() logs it.
        return type(error)(
            f"{error} -- the state (generation {pending.generation}) was saved to the local "
            f"spool {self.spool.path}; the next successful save or flush_spool() pushes it"
        )

    def spooled_generation(self) -> int:
        """The generation of the spooled frame, 0 when nothing (readable) is spooled."""
        if self.spool is None or self.spool.info() is None:
            return 0
        try:
            return self.commit.frames.header_of(self.spool.store).generation
        except StateError:
            return 0

    def flush(self) -> bool:
        """Push a spooled state to the primary now; True if one was pushed (see the manager)."""
        if self.spool is None or self.spool.info() is None:
            return False
        raw, _ = self.spool.store.read()
        data = memoryview(raw)
        header = parse_header(data, total_size=len(data))
        expect, next_generation = self.commit.expectation()
        if header.generation < next_generation:
            log.warning(
                "%s: dropped the spooled state (generation %d): the primary is newer",
                self.url,
                header.generation,
            )
            self.spool.clear()
            return False
        info = self.commit.frames.write([data], expect)
        self.commit.observe(info.token, header.generation)
        self.spool.clear()
        log.info("pushed the spooled state (generation %d) to %s", header.generation, self.url)
        return True

    def clear(self) -> None:
        """Forget a spooled state (the state was deleted: it must not come back)."""
        if self.spool is not None:
            self.spool.clear()

    # -- loading

    def load_spool(self) -> tuple[dict[str, Any], int] | None:
        """The spooled state and its generation; None if none is spooled or it is unreadable."""
        if self.spool is None or self.spool.info() is None:
            return None
        try:
            data, _ = self.spool.store.read()
            return self.commit.decode(data)
        except StateError as e:
            log.error("the spooled state %s is unreadable and was ignored: %s", self.spool.path, e)
            return None

    def load(self, *, fallback: bool) -> Loaded:
        """The newer of primary and spool; with ``fallback``, a retained version when the
        current object is unreadable and nothing is spooled. Raises the primary's error
        (``NothingReadable`` from recovery when no version reads either)."""
        primary: Current | None = None
        failure: StateError | None = None
        unreadable: Unreadable | None = None
        try:
            primary = self.commit.read_current(fallback=fallback)
        except (StateNotFoundError, StorageError) as e:
            failure = e
        except Unreadable as u:
            failure, unreadable = u.error, u
        spooled = self.load_spool()
        if spooled is not None and (primary is None or spooled[1] > primary.generation):
            log.warning(
                "%s: loaded the spooled state (generation %d, %s) because it is newer than "
                "the primary (%s); the next successful save or flush_spool() pushes it",
                self.url,
                spooled[1],
                self.spool.path if self.spool else "?",
                f"generation {primary.generation}" if primary else f"unavailable: {failure}",
            )
            return Loaded(spooled[0], "spool")
        if primary is not None:
            return Loaded(primary.state, "primary")
        if unreadable is not None:
            found = self.recovery.fall_back(unreadable)
            return Loaded(found.state, f"version {found.generation}", found)
        assert failure is not None
        raise failure

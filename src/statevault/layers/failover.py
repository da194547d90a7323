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

from ..errors import (
    ConfigurationError,
    ConflictError,
    StateError,
    StateNotFoundError,
    StorageError,
)
from ..frame import parse_header
from ..spool import Spool
from ..storage import ObjectInfo
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
    """Primary (through ``Recovery`` and ``Commit``) plus an optional spool.

    The spool is a fallback: a spool that cannot be inspected or written (EACCES, ENOTDIR,
    a full disk) is a warning, never a reason to skip or fail the primary.
    """

    def __init__(self, recovery: Recovery, spool: Spool | None) -> None:
        self.recovery = recovery
        self.commit = recovery.commit
        self.spool = spool
        # Whether the spooled frame is this manager's own continuation (it spooled it, or a
        # load returned it): a successful save then supersedes it.
        self.adopted = False

    @property
    def url(self) -> str:
        return self.commit.url

    # -- the spool, fail-safe

    def spool_info(self) -> ObjectInfo | None:
        """The spool file's info; None when nothing is spooled or the spool cannot be asked
        (logged as a warning: the spool must never block the primary)."""
        if self.spool is None:
            return None
        try:
            return self.spool.info()
        except (StateError, OSError) as e:
            log.warning("the spool %s cannot be inspected (ignored): %s", self.spool.path, e)
            return None

    def spool_base(self) -> dict[str, Any] | None:
        """What the spooled save was based on, None when unknown (see ``Spool.base``)."""
        return None if self.spool is None else self.spool.base()

    def _clear_spool(self, why: str) -> None:
        if self.spool is None:
            return
        try:
            self.spool.clear()
        except (StateError, OSError) as e:
            log.warning("could not remove the spooled state %s (%s): %s", self.spool.path, why, e)
            return
        self.adopted = False

    # -- saving

    def save(self, snapshot: Snapshot, *, strict: bool = False) -> int:
        """Commit ``snapshot`` to the primary, else spool it; return the new generation.

        Raises like ``Commit.write``; a ``StorageError`` says where the state was spooled.
        ``strict``: compare-and-swap even with ``on_conflict="overwrite"``.
        """
        floor = self.spooled_generation() + 1
        try:
            pending = self.commit.prepare(snapshot, floor, strict=strict)
        except StorageError as e:
            raise self._to_spool(self.commit.offline(snapshot, floor), e) from e
        try:
            try:
                info = self.commit.write(pending)
            except ConflictError:
                if not pending.fenced:
                    raise
                # Overwrite mode lost the race for the HEAD whose pieces it shared: probe
                # again and save self-contained, never a HEAD over packs that may be gone.
                log.warning("%s: replaced during the save; saving self-contained", self.url)
                pending = self.commit.prepare(snapshot, floor, strict=strict, share=False)
                info = self.commit.write(pending)
        except ConflictError:
            raise
        except StorageError as e:
            raise self._to_spool(pending, e) from e
        self.recovery.record(pending.chunks, pending.generation, info)
        self.recovery.collect_garbage()
        if self.spool_info() is not None:
            if self.adopted or self.spool_base() is not None:
                # This save is newer than anything spooled: the spool has done its job.
                self._clear_spool("superseded")
                log.info("%s is reachable again; cleared the spooled state", self.url)
            else:
                log.error(
                    "%s: a spooled state written without knowing the primary (%s) was kept: "
                    "push it or discard it with `statevault spool %s --push|--discard`",
                    self.url,
                    self.spool.path if self.spool else "?",
                    self.url,
                )
        log.debug("saved %s generation %d (%d bytes)", self.url, pending.generation, info.size)
        return pending.generation

    def _to_spool(self, pending: Pending, error: StorageError) -> StateError:
        """Keep a frame the primary refused in the local spool; return the error to raise."""
        if self.spool is None or isinstance(error, ConfigurationError):
            return error
        commit = self.commit
        base = {"token": commit.token, "generation": commit.generation} if commit.observed else None
        try:
            # A spooled save is self-contained: a delta save's full frame, never a manifest.
            self.spool.put(pending.chunks if pending.delta is None else pending.delta.full(), base)
        except (StateError, OSError) as spool_error:
            log.error("could not spool the state of %s either: %s", self.url, spool_error)
            return error
        self.adopted = True
        # No log here: the error raised says where the state went, and save_state() logs it.
        return type(error)(
            f"{error} -- the state (generation {pending.generation}) was saved to the local "
            f"spool {self.spool.path}; the next successful save or flush_spool() pushes it"
        )

    def spooled_generation(self) -> int:
        """The generation of the spooled frame, 0 when nothing (readable) is spooled."""
        if self.spool is None or self.spool_info() is None:
            return 0
        try:
            return self.commit.frames.header_of(self.spool.store).generation
        except (StateError, OSError):
            return 0

    def flush(self, *, force: bool = False) -> bool:
        """Push a spooled state to the primary now; True if one was pushed (see the manager).

        A spooled state whose base is unknown (written by a process that never reached the
        primary) over an existing primary is a conflict: kept, logged at ERROR, and
        ``ConflictError`` raised; ``force=True`` pushes it anyway as the next generation
        (``statevault spool URL --push``).
        """
        if self.spool is None or self.spool_info() is None:
            return False
        raw, _ = self.spool.store.read()
        data = memoryview(raw)
        header = parse_header(data, total_size=len(data))
        if self.commit.landed([data]) is not None:
            self._clear_spool("already stored")
            return False
        base = self.spool_base()
        expect, next_generation = self.commit.expectation()
        if force:
            generation = max(header.generation, next_generation)
            chunks = self.commit.frames.reframe(data, generation)
            info = self.commit.frames.write(chunks, expect)
            self.commit.observe(info.token, generation)
            self._clear_spool("pushed")
            log.warning("pushed the spooled state to %s as generation %d", self.url, generation)
            return True
        if base is None and not self.adopted and self.commit.frames.store.info() is not None:
            log.error(
                "%s: the spooled state (generation %d, %s) was written without knowing the "
                "primary, which holds another state: kept. Compare them, then run "
                "`statevault spool %s --push` or `--discard`",
                self.url,
                header.generation,
                self.spool.path,
                self.url,
            )
            raise ConflictError(
                f"the spooled state of {self.url} (generation {header.generation}, "
                f"{self.spool.path}) was saved while the primary could not be read, and the "
                "primary holds a state it did not see: it was kept. Push it with `statevault "
                f"spool {self.url} --push` (replaces the primary) or drop it with --discard."
            )
        if self.commit.stored_generation() >= header.generation:
            log.warning(
                "%s: dropped the spooled state (generation %d): the primary is newer",
                self.url,
                header.generation,
            )
            self._clear_spool("older than the primary")
            return False
        info = self.commit.frames.write([data], expect)
        self.commit.observe(info.token, header.generation)
        self._clear_spool("pushed")
        log.info("pushed the spooled state (generation %d) to %s", header.generation, self.url)
        return True

    def discard(self) -> bool:
        """Drop a spooled state (``statevault spool URL --discard``); True if one was there."""
        if self.spool is None or self.spool_info() is None:
            return False
        self.spool.clear()
        self.adopted = False
        log.warning("%s: discarded the spooled state %s", self.url, self.spool.path)
        return True

    def clear(self) -> None:
        """Forget a spooled state (the state was deleted: it must not come back)."""
        if self.spool is not None:
            self.spool.clear()
            self.adopted = False

    # -- loading

    def load_spool(self) -> tuple[dict[str, Any], int] | None:
        """The spooled state and its generation; None if none is spooled or it is unreadable."""
        if self.spool is None or self.spool_info() is None:
            return None
        try:
            data, _ = self.spool.store.read()
            return self.commit.decode(data)
        except (StateError, OSError) as e:
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
            self.adopted = True
            return Loaded(spooled[0], "spool")
        if primary is not None:
            return Loaded(primary.state, "primary")
        if unreadable is not None:
            found = self.recovery.fall_back(unreadable)
            return Loaded(found.state, f"version {found.generation}", found)
        assert failure is not None
        raise failure

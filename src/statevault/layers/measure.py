"""The figures of each save and load (``statevault.metrics``): times, bytes and requests,
recorded around the layers so the manager's methods stay one call each.

The storage calls are counted by ``CountingStore`` under the frame store; this module opens a
``recording()`` around one save or load, turns what it counted into a ``SaveMetrics`` /
``LoadMetrics`` and hands the record to ``report`` (the manager keeps it as ``last_save`` /
``last_load`` and passes it to ``on_metrics``), on success and on failure alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..errors import StorageError
from ..metrics import LoadMetrics, SaveMetrics, recording
from .commit import Commit
from .failover import Failover
from .snapshot import Snapshot

__all__ = ["Measure"]


class Measure:
    """Times and counts the saves and loads of one state at ``url``; ``report`` gets each
    record once the call is over (raised or not)."""

    def __init__(self, url: str, report: Callable[[SaveMetrics | LoadMetrics], None]) -> None:
        self.url = url
        self._report = report

    def encode_failed(self, seconds: float, error: BaseException) -> None:
        """Report a save whose encode raised ``error`` after ``seconds`` (nothing written)."""
        record = SaveMetrics(self.url, encode=seconds, error=f"{type(error).__name__}: {error}")
        record.total = record.encode
        self._report(record)

    def commit(self, failover: Failover, snapshot: Snapshot, encode_seconds: float) -> int:
        """``failover.save(snapshot)``, timed; return the new generation, raise as it raises."""
        record = SaveMetrics(self.url, encode=encode_seconds)
        start = time.perf_counter()
        with recording() as rec:
            try:
                record.generation = failover.save(snapshot)
                record.ok = True
                return record.generation
            except BaseException as e:
                record.error = f"{type(e).__name__}: {e}"
                spool = failover.spool
                # Failover spools every save the storage refused; a spool that holds a frame
                # now holds this one (or the spool write failed too and logged it).
                record.spooled = isinstance(e, StorageError) and (
                    spool is not None and spool.info() is not None
                )
                raise
            finally:
                record.total = time.perf_counter() - start + encode_seconds
                record.transform, record.write = rec.transform, rec.io
                record.bytes_written, record.bytes_read = rec.bytes_written, rec.bytes_read
                record.requests = rec.requests
                self._report(record)

    def load(
        self,
        read: Callable[[], dict[str, Any]],
        *,
        version: int | None,
        commit: Commit,
        source: Callable[[], str | None],
    ) -> dict[str, Any]:
        """``read()``, timed; ``source()`` names where it came from once it returned, the
        generation is ``commit``'s (or ``version``'s when one was asked for)."""
        record = LoadMetrics(self.url)
        start = time.perf_counter()
        with recording() as rec:
            try:
                state = read()
                record.ok, record.source = True, source()
                if version is not None:
                    record.source = f"version {version}"
                return state
            except BaseException as e:
                record.error = f"{type(e).__name__}: {e}"
                raise
            finally:
                record.total = time.perf_counter() - start
                record.read, record.decode = rec.io, max(0.0, record.total - rec.io)
                record.bytes_read, record.requests = rec.bytes_read, rec.requests
                record.generation = commit.generation if version is None else version
                self._report(record)

"""``StateInfo``: what ``StateManager.get_state_info()`` reports, as a typed record.

Built from the storage's answer, the frame header (ranged reads, nothing decoded) and the
failover spool; ``as_dict()`` is the spec's dict form (the keys ``get_state_info()`` returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from .delta.reader import DeltaReader
from .delta.stats import describe
from .errors import StateError, StorageError
from .frame import MANIFEST_VERSION
from .layers import Commit, Failover, FrameStore

__all__ = ["SpoolInfo", "StateInfo", "describe_state"]


@dataclass(frozen=True)
class SpoolInfo:
    """A spooled state waiting for the primary: its file, size and generation (0: unreadable)."""

    path: str
    size: int
    generation: int
    #: What the spooled save was based on (``token``, ``generation``); None: unknown, so a
    #: flush over an existing primary is a conflict (``statevault spool URL --push|--discard``).
    base: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "generation": self.generation,
            "base": self.base,
        }


@dataclass(frozen=True)
class StateInfo:
    """The stored state described without decoding it; see ``StateManager.get_state_info``.

    ``exists`` is None when the storage could not be asked (then ``error`` says why);
    ``error`` is also set when the header cannot be read (``readable`` is False).
    """

    url: str
    protocol: str
    exists: bool | None
    size: int
    last_modified: datetime | None
    generation: int | None
    format_version: int | None
    transforms: list[Any]
    encrypted: bool | None
    sections: int
    created: datetime | None
    kind: Any
    readable: bool
    atomic: bool
    conditional_writes: bool
    spool: SpoolInfo | None
    unflushed: bool
    schema_version: Any
    keep_versions: int
    last_load_source: str | None
    fallback: dict[str, Any] | None
    error: str | None = field(default=None)
    #: Why the last save's retained version could not be kept (the save itself stood).
    history_error: str | None = field(default=None)
    #: A delta manifest's packs and fragmentation (``statevault.delta.stats``), else None.
    delta: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        """The spec's dict form; ``error`` is present only when there is one."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["spool"] = self.spool.as_dict() if self.spool is not None else None
        if self.error is None:
            del out["error"]
        return out


def _delta(frames: FrameStore) -> dict[str, Any]:
    """The delta manifest's figures; ``{"error": ...}`` when its index cannot be read (no key)."""
    try:
        reader, _ = frames.ranged_reader()
        if not isinstance(reader, DeltaReader):
            return {}
        return describe(reader)
    except StateError as e:
        return {"error": f"{type(e).__name__}: {e}"}


def describe_state(
    frames: FrameStore,
    commit: Commit,
    failover: Failover,
    *,
    keep_versions: int,
    last_load_source: str | None,
    fallback: dict[str, Any] | None,
    history_error: str | None = None,
) -> StateInfo:
    """Build a ``StateInfo``; never raises for a storage failure (it is reported in ``error``).

    A writer that has not looked at the stored state yet takes this as its observation, as a
    load would, but only if the token and the header were read from the same object.
    """
    store = frames.store
    storage_error: StorageError | None = None
    try:
        info = store.info()
    except StorageError as e:
        info, storage_error = None, e
    spool = failover.spool
    spool_info = failover.spool_info()  # a spool that cannot be inspected is a warning
    base: dict[str, Any] = {
        "url": store.url,
        "protocol": store.protocol,
        "exists": None if storage_error else info is not None,
        "size": info.size if info else 0,
        "last_modified": info.modified if info else None,
        "generation": None,
        "format_version": None,
        "transforms": [],
        "encrypted": None,
        "sections": 0,
        "created": None,
        "kind": None,
        "readable": False,
        "atomic": store.atomic,
        "conditional_writes": store.conditional,
        "spool": None,
        "unflushed": False,
        "schema_version": None,
        "keep_versions": keep_versions,
        "last_load_source": last_load_source,
        "fallback": fallback,
        "history_error": history_error,
    }
    if spool_info is not None and spool is not None:
        base["spool"] = SpoolInfo(
            str(spool.path),
            spool_info.size,
            failover.spooled_generation(),
            failover.spool_base(),
        )
        base["unflushed"] = True
    if storage_error is not None:
        return StateInfo(**base, error=f"{type(storage_error).__name__}: {storage_error}")
    if info is None:
        if not commit.observed:
            commit.observe(None, None)
        return StateInfo(**base)
    try:
        header = frames.header()
    except StateError as e:
        return StateInfo(**base, error=f"{type(e).__name__}: {e}")
    base.update(
        generation=header.generation,
        format_version=header.version,
        transforms=[t.get("name") for t in header.transforms],
        encrypted=header.encrypted_with(frames.registry),
        sections=len(header.sections),
        created=datetime.fromtimestamp(header.created, UTC),
        kind=header.meta.get("kind"),
        schema_version=header.meta.get("schema_version", 1),
        readable=True,
    )
    if header.version == MANIFEST_VERSION:
        base["delta"] = _delta(frames)
    if not commit.observed:
        # Only a token and a generation read from the same object make an observation.
        again = store.info()
        if again is not None and again.token == info.token:
            commit.observe(info.token, header.generation)
    return StateInfo(**base)

"""Schema versions of a state and the chain of migrations between them.

A manager built with ``schema_version=N`` writes N into every frame's meta. Loading a state of
an older schema runs the registered migrations in order (``from_version`` k turns a state of
version k into one of version k + 1); the migrated state is written back only by the next save.
A state of a newer schema than the code raises ``SchemaVersionError``: the code that reads it
must be at least as new as the code that wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import CorruptStateError, MigrationError, SchemaVersionError

__all__ = ["Migration", "Migrations"]

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class Migrations:
    """Migrations by the version they start from; the last registration for a version wins."""

    def __init__(self) -> None:
        self._steps: dict[int, Migration] = {}

    def register(self, from_version: int, fn: Migration) -> Migration:
        """Add ``fn`` as the step from schema ``from_version`` to ``from_version + 1``.

        Returns ``fn`` (so it works as a decorator's body). A second step for the same version
        replaces the first. Raises ``ValueError`` for a version that is not an int of 0 or more.
        """
        if not isinstance(from_version, int) or from_version < 0:
            raise ValueError(f"from_version must be a non-negative int, not {from_version!r}")
        self._steps[from_version] = fn
        return fn

    def run(self, state: dict[str, Any], stored: int, target: int, url: str) -> dict[str, Any]:
        """Bring ``state`` from schema ``stored`` to ``target``; the input is not modified."""
        if isinstance(stored, bool) or not isinstance(stored, int) or stored < 1:
            # No writer stores these (schema versions start at 1): a forged or damaged meta,
            # and a huge negative one must not become a range to walk.
            raise CorruptStateError(
                f"{url} claims schema version {str(stored)[:40]!r}, which no statevault "
                "writes: the state is damaged or was not written by statevault"
            )
        if stored > target:
            raise SchemaVersionError(
                f"{url} was written with schema version {stored}, newer than this code's "
                f"{target}: deploy the newer code to read it (nothing was changed)"
            )
        missing = [v for v in range(stored, target) if v not in self._steps]
        if missing:
            raise MigrationError(
                f"{url} has schema version {stored} and this code expects {target}, but no "
                f"migration is registered from version {missing[0]}: add "
                f"@manager.migration(from_version={missing[0]})"
            )
        for version in range(stored, target):
            try:
                result = self._steps[version](state)
            except Exception as e:
                raise MigrationError(
                    f"migration from schema version {version} to {version + 1} of {url} "
                    f"failed: {type(e).__name__}: {e} (storage is unchanged)"
                ) from e
            if not isinstance(result, dict):
                raise MigrationError(
                    f"migration from schema version {version} to {version + 1} returned "
                    f"{type(result).__name__}, not a dict: return the migrated state"
                )
            state = result
        return state

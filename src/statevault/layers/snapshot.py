"""The encode step of a save and the decode step of a load: a state <-> frame sections.

``StateCodec.encode(state)`` is the first half of every save: a consistent ``Snapshot`` (every
section's payload plus the frame's meta), with no I/O, so an unsupported value costs no request
and nothing is written unless the whole state encodes. The commit layer turns a snapshot into
a frame at the generation it settles on and writes it (``Commit.prepare`` / ``Commit.write``).
A background or async saver calls ``encode`` under the caller's lock and commits later.

``decode(data)`` reads a stored object (frame or legacy JSON) and migrates it to this schema.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..delta.reader import DeltaReader
from ..errors import CorruptStateError
from ..migrations import Migrations
from ..transforms import Buffer, Transform
from .framestore import FrameStore
from .layout import Layout
from .legacy import is_frame, parse_json

__all__ = ["Snapshot", "StateCodec"]

log = logging.getLogger("statevault")


@dataclass(frozen=True)
class Snapshot:
    """An encoded state, ready to frame: section payloads (root first), the frame's meta and
    the transform stack of the save (built at encode time, so a bad transform or key fails
    before any I/O).

    The chunks may share memory with the state's objects (numpy arrays are not copied): commit
    it before mutating them, or copy first.
    """

    sections: list[list[Buffer]]
    meta: dict[str, Any]
    transforms: list[Transform]


class StateCodec:
    """A layout plus the schema version and migrations: states <-> stored objects."""

    def __init__(
        self,
        frames: FrameStore,
        layout: Layout,
        migrations: Migrations,
        *,
        kind: str,
        schema_version: int,
    ) -> None:
        if not isinstance(schema_version, int) or schema_version < 1:
            raise ValueError(f"schema_version must be an int >= 1, not {schema_version!r}")
        self.frames = frames
        self.layout = layout
        self.migrations = migrations
        self.kind = kind
        self.schema_version = schema_version

    @property
    def url(self) -> str:
        return self.frames.url

    def meta(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "writer": f"statevault {__version__}",
            "schema_version": self.schema_version,
        }

    def encode(self, state: dict[str, Any]) -> Snapshot:
        """Encode ``state`` (no I/O); raises ``SerializationError`` naming the value's path."""
        sections = self.layout.encode(state)
        self.frames.config.check_sections(sections)
        return Snapshot(sections, self.meta(), self.frames.write_transforms())

    def decode(self, data: Any) -> tuple[dict[str, Any], int]:
        """Decode a stored object (frame or legacy JSON), migrated to this schema version.

        Returns the state and its generation (0 for legacy JSON).
        """
        # Plain JSON carries no signature: a reader that requires one never imports it.
        if not is_frame(data) and not self.frames.config.require_authentication:
            legacy = parse_json(data)
            if legacy is not None:
                log.info(
                    "%s is plain JSON (not a statevault frame); the next save converts it",
                    self.url,
                )
                return self.migrate(self.layout.from_legacy(legacy), 1), 0
        reader = self.frames.reader(data)
        if isinstance(reader, DeltaReader):
            reader.prefetch()  # a whole state: each pack's pieces in one ranged read
        stored_schema = reader.header.meta.get("schema_version", 1)
        if not isinstance(stored_schema, int):
            raise CorruptStateError(f"{self.url}: schema_version {stored_schema!r} is not an int")
        state = self.layout.join(reader, self.url)
        return self.migrate(state, stored_schema), reader.header.generation

    def migrate(self, state: dict[str, Any], stored_schema: int) -> dict[str, Any]:
        if stored_schema == self.schema_version:
            return state
        return self.migrations.run(state, stored_schema, self.schema_version, self.url)

"""The frame store: a ``Store`` that speaks frames (the innermost layer).

It adds to a byte store the frame's transforms and the keyring: the header of a stored object
(ranged reads, nothing decoded), a lazy section reader, a reader over bytes in memory, building
a frame from encoded sections, and a write with an expectation (the store's compare-and-swap).
It holds no state of its own beyond its configuration, so one frame store can be pointed at
another object with the same transforms and keys (``on()``: a version slot, the spool file).
A delta manifest (``MANIFEST_VERSION``) is read through a ``DeltaReader`` whose pieces come
from the packs of the state's own sidecar (``packs_base``, kept by ``on()``), so a retained
version's manifest reads the packs it shares with the HEAD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..delta.reader import DeltaReader, pack_path
from ..errors import StateNotFoundError
from ..frame import MANIFEST_VERSION, PLAIN_VERSION, FrameHeader, FrameReader, build_frame
from ..keys import Keyring
from ..metrics import timed_transform
from ..storage import ANY, ObjectInfo, Store
from ..transforms import Buffer, Transform, TransformConfig, TransformRegistry

__all__ = ["FrameStore", "frame_prefix"]


def frame_prefix(chunks: Sequence[Any], size: int = 4096) -> bytes:
    """The first ``size`` bytes of a frame given as chunks (header, generation, created: unique)."""
    out = bytearray()
    for chunk in chunks:
        out += memoryview(chunk).cast("B")[: size - len(out)]
        if len(out) >= size:
            break
    return bytes(out)


class FrameStore:
    """Frames in one ``Store``: read with the registry and keyring, write with the save stack.

    ``config`` is the manager's transform configuration (compression, extra transforms,
    signing, encryption, ``max_state_bytes``); the save stack is built from it on every build
    so a registration made later takes effect at the next save. Reading never uses the save
    stack: a frame is read with whatever transforms its header names, within the config's
    bounds (and, with a signing key, only if an authenticating transform protects it).
    """

    __slots__ = ("config", "packs_base", "store")

    def __init__(
        self, store: Store, *, config: TransformConfig, packs_base: Store | None = None
    ) -> None:
        self.store = store
        self.config = config
        # The state whose ``.packs/`` sidecar holds the pieces of delta manifests.
        self.packs_base = store if packs_base is None else packs_base

    @property
    def registry(self) -> TransformRegistry:
        """The transform registry frames are read (and the save stack built) with."""
        return self.config.registry

    @property
    def keyring(self) -> Keyring | None:
        """The encryption keys, or None."""
        return self.config.keyring

    def write_transforms(self) -> list[Transform]:
        """The transforms a save applies now, in order."""
        return self.config.write_transforms()

    @property
    def url(self) -> str:
        return self.store.url

    def on(self, store: Store) -> FrameStore:
        """The same transforms and keys over another object (a version slot, the spool)."""
        return FrameStore(store, config=self.config, packs_base=self.packs_base)

    # -- reading

    def reader(self, data: Any) -> FrameReader:
        """A reader over a whole frame in memory (sections are zero-copy slices of ``data``;
        a delta manifest's sections are assembled from its packs)."""
        return self._resolving(FrameReader.from_bytes(data, **self.config.reader_options()))

    def _resolving(self, reader: FrameReader) -> FrameReader:
        if reader.header.version != MANIFEST_VERSION:
            return reader
        return DeltaReader(
            reader,
            lambda name: self.packs_base.sibling(pack_path(name)),
            self.config.reader_options(),
            self.packs_base.url,
        )

    def ranged_reader(self, info: ObjectInfo | None = None) -> tuple[FrameReader, ObjectInfo]:
        """A reader that fetches the header now and each section on demand (ranged reads).

        ``StateNotFoundError`` when nothing is stored; pass ``info`` if already known.
        """
        info = self.store.info() if info is None else info
        if info is None:
            raise StateNotFoundError(f"no state at {self.store.url}")
        reader = FrameReader(self.store.read_range, size=info.size, **self.config.reader_options())
        return self._resolving(reader), info

    def header(self) -> FrameHeader:
        """The frame header of the stored object, by ranged reads (no section is read)."""
        return self.ranged_reader()[0].header

    def header_of(self, store: Store) -> FrameHeader:
        """The header of another object read with these transforms (``History`` takes this)."""
        return self.on(store).header()

    def read(self) -> tuple[Any, ObjectInfo]:
        """The whole stored object (``StateNotFoundError`` when there is none)."""
        return self.store.read()

    # -- writing

    def build(
        self,
        sections: Sequence[Sequence[Buffer]],
        *,
        generation: int,
        meta: dict[str, Any],
        created: float | None = None,
        transforms: Sequence[Transform] | None = None,
        version: int = PLAIN_VERSION,
    ) -> list[Buffer]:
        """The frame of ``sections`` as chunks, through ``transforms`` (default: the save
        stack now); no I/O. ``version``: ``MANIFEST_VERSION`` for a delta HEAD."""
        with timed_transform():  # the "transform" figure of the save (statevault.metrics)
            return build_frame(
                sections,
                transforms=self.write_transforms() if transforms is None else transforms,
                generation=generation,
                meta=meta,
                created=created,
                version=version,
            )

    def write(self, chunks: Sequence[Buffer], expect: object) -> ObjectInfo:
        """Replace the object atomically if it still matches ``expect``, else ``ConflictError``."""
        return self.store.write(chunks, expect=expect)

    def reframe(self, data: Any, generation: int | None = None) -> list[Buffer]:
        """The frame in ``data`` rebuilt with the save stack as ``generation`` (None: its own),
        contents, meta and creation time kept: a spooled frame pushed over a newer primary, a
        key rotation, an export. A delta manifest becomes a self-contained frame."""
        reader = self.reader(data)
        header = reader.header
        sections = [[reader.section(i)] for i in range(len(header.sections))]
        return self.build(
            sections,
            generation=header.generation if generation is None else generation,
            meta=header.meta,
            created=header.created,
        )

    def rewrite(self, store: Store) -> None:
        """Rewrite the frame stored in ``store`` with the save stack; contents, generation,
        meta and creation time kept (key rotation re-encrypts retained versions with it). A
        delta manifest becomes a self-contained frame: it no longer needs the old packs."""
        frames = self.on(store)
        data, _ = frames.read()
        chunks = frames.reframe(data)
        frames.write(chunks, ANY)

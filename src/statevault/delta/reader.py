"""Reading a delta manifest: a ``FrameReader`` whose sections are assembled from packs.

``DeltaReader`` wraps the reader of a HEAD (or retained version) of ``MANIFEST_VERSION``: its
``header`` lists the logical sections only (the index section is hidden). ``section_parts(i)``
gives section ``i``'s payload as parts (inline bytes of the manifest, read-only, and extents
of pieces), which the codec turns into values without joining them (``Codec.loads_parts``);
``section(i)`` joins them into a fresh ``bytearray`` view (writable, shared with nothing).
Only the packs a section needs are read, each with one header read and one ranged read of
the span its pieces occupy (``Store.read_range_owned``: straight into fresh memory), so the
lazy per-section reads (portfolio summary, one pair) keep working; ``prefetch()`` gathers the
pieces of every section first (a full load: one span per pack).

Zero copy, and why it is safe: a piece is decoded once, into memory of its own (decompressed
or decrypted into a fresh buffer, or for a plain pack a slice of the span just read), and a
piece used by one extent of one section only is handed out writable: the codec builds the
array on it. A piece used more than once (equal buffers share pieces) is handed out
read-only each time, so the codec copies it and no two arrays share memory. Loaded arrays
keep their span alive (a plain pack's span also holds the bytes of pieces the HEAD no longer
uses: at most the bytes the load read); arrays assembled from several pieces share fresh
allocations of at most 2 MiB, each in a slice of its own (``codec._payload.unpack_parts``). Every
pack is checked against the digest its HEAD recorded, and any damage met while reading one
(missing, truncated, swapped, a bad checksum, compression or MAC) is a ``PackError``
(``IntegrityError``) naming the pack, never other data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import (
    CorruptStateError,
    EncryptionError,
    IntegrityError,
    StateNotFoundError,
    StateTooLargeError,
    TransformError,
    UnknownTransformError,
)
from ..frame import FrameReader
from ..storage import Store
from ..transforms import Buffer
from .manifest import Index, Inline, PackRef, Segment, decode_index, decode_section
from .planner import BufferPlan

__all__ = ["DeltaReader", "PackError", "pack_path"]

PACKS = ".packs"


def pack_path(name: bytes) -> str:
    """The sidecar suffix of the pack named ``name`` (``<url>.packs/<hex>``)."""
    return f"{PACKS}/{name.hex()}"


class PackError(IntegrityError):
    """A pack a manifest references is missing, or is not the pack it recorded."""


class DeltaReader(FrameReader):
    """Sections of a delta manifest, assembled from inline bytes and pieces of packs.

    ``open_pack(name)`` gives the ``Store`` of a pack; ``options`` are ``FrameReader``'s
    keyword arguments (registry, keyring, bounds), applied to packs as to the HEAD.
    Thread-safety as ``FrameReader``'s when the cache is not shared (one load, one reader).
    """

    def __init__(
        self,
        head: FrameReader,
        open_pack: Callable[[bytes], Store],
        options: dict[str, Any],
        url: str,
    ) -> None:
        # No FrameReader.__init__: the HEAD's reader did the reading; this one resolves.
        self.head = head
        self.header = replace(head.header, sections=head.header.sections[:-1])
        self._open_pack = open_pack
        self._options = options
        self._url = url
        self._index: Index | None = None
        self._ids: list[bytes] = []
        # name -> the pack's reader, its raw ranged read, the spans fetched ahead of it
        self._packs: dict[bytes, tuple[FrameReader, Callable[[int, int], Buffer], list[Any]]] = {}
        self._pieces: dict[bytes, Buffer] = {}
        self._uses: Counter[bytes] = Counter()
        self._given: set[bytes] = set()  # pieces already handed out (read-only) once
        self._segments: dict[int, list[Segment]] = {}

    # -- the manifest itself

    def index(self) -> Index:
        """The index section (packs, pieces, retired packs, salt)."""
        if self._index is None:
            self._index = decode_index(self.head.section(len(self.head.header.sections) - 1))
            self._ids = list(self._index.pieces)
        return self._index

    def segments(self, index: int) -> list[Segment]:
        """Section ``index`` as inline bytes and buffer plans (no pack is read)."""
        known = self._segments.get(index)
        if known is not None:
            return known
        if not 0 <= index < len(self.header.sections):
            count = len(self.header.sections)
            raise IndexError(f"section {index} does not exist: the frame has {count}")
        # Decoded once per reader: prefetch and the section read both need them (a layout-2
        # section is decompressed with its dictionary each time it is decoded).
        segments = decode_section(self.head.section(index), self._piece_ids, base=self.stored)
        self._segments[index] = segments
        return segments

    def stored(self, index: int) -> Buffer:
        """Logical section ``index``'s payload as the HEAD stores it (manifest layout 1 or 2:
        a layout-2 section's dictionary); IndexError if there is none."""
        if not 0 <= index < len(self.header.sections):
            raise IndexError(f"section {index} does not exist")
        return self.head.section(index)

    def _piece_ids(self) -> list[bytes]:
        self.index()
        return self._ids

    # -- pieces

    def _pack(self, name: bytes) -> tuple[FrameReader, Callable[[int, int], Buffer], list[Any]]:
        """The pack's reader, its raw ranged read, and the window the reader reads first."""
        known = self._packs.get(name)
        if known is not None:
            return known
        ref = self.index().packs.get(name)
        if ref is None:
            raise PackError(f"{self._url}: a manifest names a pack its index does not list")
        store = self._open_pack(name)
        window: list[tuple[int, Buffer]] = []

        def read_range(start: int, end: int) -> Buffer:
            for at, data in window:
                if at <= start and end <= at + len(data):
                    return memoryview(data)[start - at : end - at]
            return fetch(start, end)

        def fetch(start: int, end: int) -> Buffer:
            try:
                return store.read_range_owned(start, end)
            except StateNotFoundError as e:
                raise self._missing(ref) from e

        try:
            reader = FrameReader(
                read_range, size=ref.size, probe=max(ref.header, 64), **self._options
            )
        except CorruptStateError as e:
            if isinstance(e, PackError | StateTooLargeError):
                raise  # already says what is wrong (a limit is not damage)
            raise self._damaged(ref, e) from e
        if reader.header.digest != ref.digest:
            raise PackError(
                f"{self._url}: pack {ref.name.hex()} is not the pack this state recorded (it "
                "was replaced or altered after writing); restore a backup"
            )
        self._packs[name] = (reader, fetch, window)
        return reader, fetch, window

    def _damaged(self, ref: PackRef, e: Exception) -> PackError:
        return PackError(
            f"{self._url}: pack {ref.name.hex()} is damaged ({e}); restore it, or load a "
            "retained version (load(fallback=True))"
        )

    def _missing(self, ref: PackRef) -> PackError:
        return PackError(
            f"{self._url}: pack {ref.name.hex()} ({ref.size} bytes) is missing: it was deleted "
            "or never copied with the state; restore it, or load a retained version "
            "(load(fallback=True))"
        )

    def _fetch_pieces(self, pieces: list[bytes]) -> None:
        """Decode ``pieces`` into the cache, one ranged read per pack."""
        index = self.index()
        by_pack: dict[bytes, list[bytes]] = {}
        # Each piece once: equal buffers (the same index under many Series) repeat pieces,
        # and decoding one again (checksum, zstd, Fernet) would only replace it by itself.
        for pid in dict.fromkeys(pieces):
            if pid in self._pieces:
                continue
            loc = index.pieces.get(pid)
            if loc is None:
                raise PackError(f"{self._url}: a manifest names a piece its index does not list")
            by_pack.setdefault(loc.pack, []).append(pid)
        for name, pids in by_pack.items():
            try:
                reader, fetch, window = self._pack(name)
            except StateNotFoundError as e:
                raise self._missing(index.packs[name]) from e
            entries = reader.header.sections
            sections = sorted({index.pieces[p].section for p in pids})
            if sections[-1] >= len(entries):
                raise PackError(f"{self._url}: pack {name.hex()} has fewer pieces than recorded")
            start = entries[sections[0]].offset
            last = sections[-1]
            end = entries[last + 1].offset if last + 1 < len(entries) else entries[last].end
            window.clear()
            # The probe read exactly the header (its size is in the index): one more read.
            window.append((start, fetch(start, end)))
            for pid in pids:
                loc = index.pieces[pid]
                try:
                    data = reader.section(loc.section)
                except (CorruptStateError, TransformError) as e:
                    # A limit is not damage, and a key or a registration has its own remedy.
                    if isinstance(e, StateTooLargeError | EncryptionError | UnknownTransformError):
                        raise
                    raise self._damaged(index.packs[name], e) from e
                if memoryview(data).nbytes != loc.length:
                    raise PackError(
                        f"{self._url}: a piece of pack {name.hex()} has the wrong size (the "
                        "index and the pack disagree); restore the pack, or load a retained "
                        "version (load(fallback=True))"
                    )
                self._pieces[pid] = data
            window.clear()

    def prefetch(self) -> None:
        """Read every piece every section needs now (a full load: one span per pack)."""
        needed: list[bytes] = []
        for i in range(len(self.header.sections)):
            for seg in self.segments(i):
                if isinstance(seg, BufferPlan):
                    for e in seg.extents:
                        self._uses[e.piece] += 1
                        needed.append(e.piece)
        self._fetch_pieces(needed)

    def section_parts(self, index: int) -> list[Buffer]:
        """Section ``index``'s payload as parts to be read back to back (see the module
        docstring: writable parts are this section's alone, read-only ones may be shared)."""
        segments = self.segments(index)
        total = 0
        needed: list[bytes] = []
        for seg in segments:
            if isinstance(seg, Inline):
                total += memoryview(seg.data).nbytes
            else:
                total += seg.size
                needed += [e.piece for e in seg.extents]
        limit = self._options.get("max_bytes")
        if limit is not None and total > limit:
            raise StateTooLargeError(
                f"section {index} assembles to {total} bytes, above this reader's "
                f"max_state_bytes ({limit}): raise max_state_bytes if the state is genuine"
            )
        for pid, n in Counter(needed).items():
            self._uses[pid] = max(self._uses[pid], n)
        self._fetch_pieces(needed)
        parts: list[Buffer] = []
        for seg in segments:
            if isinstance(seg, Inline):
                # The HEAD's own bytes (other readers of them may follow): never given away.
                parts.append(memoryview(seg.data).toreadonly())
                continue
            for e in seg.extents:
                piece = memoryview(self._pieces[e.piece])
                if e.offset + e.length > len(piece):
                    pack = self.index().pieces[e.piece].pack.hex()
                    raise PackError(
                        f"{self._url}: an extent reaches past the end of its piece in pack "
                        f"{pack} (the manifest and the pack disagree); restore a backup, or "
                        "load a retained version (load(fallback=True))"
                    )
                part = piece[e.offset : e.offset + e.length]
                if self._uses[e.piece] > 1:
                    self._uses[e.piece] -= 1
                    self._given.add(e.piece)
                    part = part.toreadonly()
                else:  # its last use: drop it (a full load holds each piece once at most)
                    self._uses.pop(e.piece, None)
                    self._pieces.pop(e.piece, None)
                    if e.piece in self._given:
                        self._given.discard(e.piece)
                        part = part.toreadonly()
                parts.append(part)
        return parts

    def section(self, index: int) -> Buffer:
        """Section ``index``'s payload: a fresh, writable buffer (see the module docstring)."""
        parts = self.section_parts(index)
        out = bytearray(sum(memoryview(p).nbytes for p in parts))
        at = 0
        for part in parts:
            n = memoryview(part).nbytes
            out[at : at + n] = part
            at += n
        return memoryview(out)

    def verify(self) -> None:
        """Read, check and assemble every section (every referenced piece of every pack)."""
        self.head.verify()
        for index in range(len(self.header.sections)):
            self.section(index)

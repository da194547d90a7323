"""Reading a delta manifest: a ``FrameReader`` whose sections are assembled from packs.

``DeltaReader`` wraps the reader of a HEAD (or retained version) of ``MANIFEST_VERSION``: its
``header`` lists the logical sections only (the index section is hidden), and ``section(i)``
returns section ``i``'s payload exactly as the writer's codec produced it, as a fresh
``bytearray`` view (writable, shared with nothing else). Only the packs a section needs are
read, each with one header read and one ranged read of the span its pieces occupy, so the
lazy per-section reads (portfolio summary, one pair) keep working; ``prefetch()`` gathers the
pieces of every section first (a full load: one span per pack). Every pack is checked against
the digest its HEAD recorded, so a missing, swapped or altered pack is a ``PackError``
(``IntegrityError``), never other data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..errors import CorruptStateError, IntegrityError, StateNotFoundError, StateTooLargeError
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

    # -- the manifest itself

    def index(self) -> Index:
        """The index section (packs, pieces, retired packs, salt)."""
        if self._index is None:
            self._index = decode_index(self.head.section(len(self.head.header.sections) - 1))
            self._ids = list(self._index.pieces)
        return self._index

    def segments(self, index: int) -> list[Segment]:
        """Section ``index`` as inline bytes and buffer plans (no pack is read)."""
        if not 0 <= index < len(self.header.sections):
            count = len(self.header.sections)
            raise IndexError(f"section {index} does not exist: the frame has {count}")
        return decode_section(self.head.section(index), self._piece_ids, base=self.stored)

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
                return store.read_range(start, end)
            except StateNotFoundError as e:
                raise self._missing(ref) from e

        try:
            reader = FrameReader(
                read_range, size=ref.size, probe=max(ref.header, 64), **self._options
            )
        except CorruptStateError as e:
            if isinstance(e, PackError | StateTooLargeError):
                raise  # already says what is wrong (a limit is not damage)
            raise PackError(
                f"{self._url}: pack {ref.name.hex()} is damaged ({e}); restore it, or load a "
                "retained version (load(fallback=True))"
            ) from e
        if reader.header.digest != ref.digest:
            raise PackError(
                f"{self._url}: pack {ref.name.hex()} is not the pack this state recorded (it "
                "was replaced or altered after writing); restore a backup"
            )
        self._packs[name] = (reader, fetch, window)
        return reader, fetch, window

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
        for pid in pieces:
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
                data = reader.section(loc.section)
                if memoryview(data).nbytes != loc.length:
                    raise PackError(f"{self._url}: a piece of pack {name.hex()} has the wrong size")
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

    def section(self, index: int) -> Buffer:
        """Section ``index``'s payload: a fresh, writable buffer (see the class docstring)."""
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
        out = bytearray(total)
        at = 0
        for seg in segments:
            if isinstance(seg, Inline):
                n = memoryview(seg.data).nbytes
                out[at : at + n] = seg.data
                at += n
                continue
            for e in seg.extents:
                piece = memoryview(self._pieces[e.piece])
                if e.offset + e.length > len(piece):
                    raise PackError(f"{self._url}: an extent reaches past the end of its piece")
                out[at : at + e.length] = piece[e.offset : e.offset + e.length]
                at += e.length
                if self._uses[e.piece] > 1:
                    self._uses[e.piece] -= 1
                else:  # its last use: drop it (a full load holds each piece once at most)
                    self._uses.pop(e.piece, None)
                    self._pieces.pop(e.piece, None)
        return memoryview(out)

    def verify(self) -> None:
        """Read, check and assemble every section (every referenced piece of every pack)."""
        self.head.verify()
        for index in range(len(self.header.sections)):
            self.section(index)

"""The delta manifest's binary records: the index section and the manifest sections.

A delta HEAD is a frame of version ``MANIFEST_VERSION`` whose last section is the *index*
(the state's piece-naming salt, the packs it references, its pieces, the packs retired and
waiting for garbage collection) and whose other sections are *manifest sections*: the
logical section's bytes as a list of segments, each either inline bytes or an extent of a
piece. Pure and I/O-free; docs/format.md ("Delta saves") has the byte layout.

Layout 2 (``compress_sections``): a manifest section may instead be stored zstd-compressed
with another section's layout-1 payload as its dictionary. The pair sections of one state are
near copies of each other (the same document with other names, sizes and piece numbers), so
this is what keeps a HEAD small: measured on the bench's M state, 47 KB of per-section zstd
for a tick's manifest becomes 17 KB (whole-HEAD compression would give 14 KB, but would make
a lazy read of one pair decode every section). The dictionary is in the same HEAD: a HEAD
stays self-contained (no pack read for a manifest, and no chain to an older HEAD).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import zstandard

from ..errors import CorruptStateError, UnsupportedFormatError
from ..transforms import Buffer
from .planner import ID_SIZE, BufferPlan, Extent

__all__ = [
    "Index",
    "Inline",
    "PackRef",
    "PieceLoc",
    "Retired",
    "Segment",
    "compress_sections",
    "decode_index",
    "decode_section",
    "encode_index",
    "encode_section",
]

_INDEX_MAGIC: Final = b"SVDX"
_SECTION_MAGIC: Final = b"SVDS"
_VERSION: Final = 1
_INDEX_HEAD: Final = struct.Struct("<4sB3xIII16s")  # magic, version, packs, pieces, retired, salt
_PACK: Final = struct.Struct("<16s16sQQQ")  # name, header digest, size, header size, raw bytes
_PIECE: Final = struct.Struct("<16sIIQ")  # piece id, pack number, section in the pack, length
_RETIRED: Final = struct.Struct("<16sQd")  # pack name, generation retired at, unix time
_SECTION_HEAD: Final = struct.Struct("<4sB3xI")  # magic, version, segments
_SEGMENT: Final = struct.Struct("<IIQQQ")  # kind, piece number, offset, length, fingerprint
_INLINE, _FIRST, _MORE = 0, 1, 2  # segment kinds: inline bytes, a buffer's first extent, next
_PACKED_MAGIC: Final = b"SVDZ"
_PACKED_HEAD: Final = struct.Struct("<4sB3xII")  # magic, version, base section, raw length
_PACKED_VERSION: Final = 1
# Sections considered as the dictionary: the first few (the largest of them is chosen).
_BASE_CANDIDATES: Final = 8
# Smaller sections are left as they are: a dictionary gains too little on them.
_PACK_MIN: Final = 128
_LEVEL: Final = 3


@dataclass(frozen=True, slots=True)
class PackRef:
    """One pack object: its name, the digest its frame header must have, its sizes."""

    name: bytes
    digest: bytes
    size: int
    header: int  # the pack frame's header size (its first section's offset)
    raw: int  # the pieces' bytes before transforms: what "live fraction" is measured against


@dataclass(frozen=True, slots=True)
class PieceLoc:
    """Where a piece is stored: section ``section`` of pack ``pack`` (a name), ``length`` bytes."""

    pack: bytes
    section: int
    length: int


@dataclass(frozen=True, slots=True)
class Retired:
    """A pack no longer referenced since generation ``generation`` (at unix time ``at``)."""

    name: bytes
    generation: int
    at: float


@dataclass
class Index:
    """The index section: salt, referenced packs and pieces, retired packs."""

    salt: bytes
    packs: dict[bytes, PackRef] = field(default_factory=dict)
    pieces: dict[bytes, PieceLoc] = field(default_factory=dict)
    retired: list[Retired] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Inline:
    """Bytes kept in the manifest itself (everything below the delta threshold)."""

    data: Buffer


Segment = Inline | BufferPlan


def _corrupt(what: str) -> CorruptStateError:
    return CorruptStateError(
        f"the delta {what} is malformed although its checksum matched: it was not written by "
        "statevault; restore a backup"
    )


def encode_index(index: Index) -> bytes:
    """The index section's payload."""
    packs = list(index.packs.values())
    number = {p.name: i for i, p in enumerate(packs)}
    out = [
        _INDEX_HEAD.pack(
            _INDEX_MAGIC, _VERSION, len(packs), len(index.pieces), len(index.retired), index.salt
        )
    ]
    out += [_PACK.pack(p.name, p.digest, p.size, p.header, p.raw) for p in packs]
    out += [
        _PIECE.pack(pid, number[loc.pack], loc.section, loc.length)
        for pid, loc in index.pieces.items()
    ]
    out += [_RETIRED.pack(r.name, r.generation, r.at) for r in index.retired]
    return b"".join(out)


def decode_index(data: Buffer) -> Index:
    """Parse an index section; ``CorruptStateError`` if it is malformed."""
    view = memoryview(data).cast("B")
    if len(view) < _INDEX_HEAD.size:
        raise _corrupt("index")
    magic, version, npacks, npieces, nretired, salt = _INDEX_HEAD.unpack_from(view)
    if magic != _INDEX_MAGIC:
        raise _corrupt("index")
    if version > _VERSION:
        raise UnsupportedFormatError(
            f"the delta index is version {version}, newer than this statevault reads: upgrade"
        )
    need = _INDEX_HEAD.size + npacks * _PACK.size + npieces * _PIECE.size
    if len(view) != need + nretired * _RETIRED.size:
        raise _corrupt("index")
    index = Index(bytes(salt))
    at = _INDEX_HEAD.size
    names: list[bytes] = []
    for _ in range(npacks):
        name, digest, size, header, raw = _PACK.unpack_from(view, at)
        at += _PACK.size
        index.packs[name] = PackRef(name, digest, size, header, raw)
        names.append(name)
    for _ in range(npieces):
        pid, pack, section, length = _PIECE.unpack_from(view, at)
        at += _PIECE.size
        if pack >= len(names):
            raise _corrupt("index")
        index.pieces[pid] = PieceLoc(names[pack], section, length)
    for _ in range(nretired):
        name, generation, when = _RETIRED.unpack_from(view, at)
        at += _RETIRED.size
        index.retired.append(Retired(name, generation, when))
    return index


def encode_section(
    segments: Sequence[Segment], number: dict[bytes, int], marks: Sequence[int] = ()
) -> bytes:
    """A manifest section's payload; ``number`` gives each piece id its index-table number,
    ``marks`` each buffer (in order) the fingerprint of its first bytes (see DeltaStore)."""
    table: list[bytes] = []
    inline: list[Buffer] = []
    position = 0
    buffers = 0
    for seg in segments:
        if isinstance(seg, Inline):
            n = memoryview(seg.data).nbytes
            table.append(_SEGMENT.pack(_INLINE, 0, position, n, 0))
            inline.append(seg.data)
            position += n
            continue
        mark = marks[buffers] if buffers < len(marks) else 0
        buffers += 1
        for k, e in enumerate(seg.extents):
            kind = _MORE if k else _FIRST
            table.append(_SEGMENT.pack(kind, number[e.piece], e.offset, e.length, mark))
    head = _SECTION_HEAD.pack(_SECTION_MAGIC, _VERSION, len(table))
    return b"".join([head, *table, *inline])


def decode_section(
    data: Buffer,
    ids: Callable[[], Sequence[bytes]],
    marks: list[int] | None = None,
    base: Callable[[int], Buffer] | None = None,
) -> list[Segment]:
    """Parse a manifest section; ``ids()`` gives the index's piece ids in table order (only
    called when the section has extents, so an inline-only section needs no index).
    ``marks``, if given, receives each buffer's fingerprint in order. ``base(i)`` gives the
    stored payload of the HEAD's section ``i`` (a layout-2 section's dictionary; IndexError
    if there is none); without it a layout-2 section is refused as corrupt."""
    view = memoryview(data).cast("B")
    if bytes(view[:4]) == _PACKED_MAGIC:
        view = _unpack(view, base)
    if len(view) < _SECTION_HEAD.size:
        raise _corrupt("manifest section")
    magic, version, count = _SECTION_HEAD.unpack_from(view)
    if magic != _SECTION_MAGIC:
        raise _corrupt("manifest section")
    if version > _VERSION:
        raise UnsupportedFormatError(
            f"the delta manifest is version {version}, newer than this statevault reads: upgrade"
        )
    start = _SECTION_HEAD.size + count * _SEGMENT.size
    if len(view) < start:
        raise _corrupt("manifest section")
    inline = view[start:]
    size = len(inline)
    out: list[Segment] = []
    append = out.append
    extents: list[Extent] = []
    total = 0  # bytes of the buffer being read (its extents so far)
    used = 0
    pieces: Sequence[bytes] = ()
    # One pass over the table (iter_unpack: about 350 segments and 550 extents in the bench's
    # M state, 1 ms with an unpack_from per entry and a closure per buffer).
    for kind, piece, offset, length, mark in _SEGMENT.iter_unpack(view[_SECTION_HEAD.size : start]):
        if kind == _MORE:
            if not extents or piece >= len(pieces):
                raise _corrupt("manifest section")
            extents.append(Extent(pieces[piece], offset, length))
            total += length
            continue
        if extents:
            append(BufferPlan(tuple(extents), total))
            extents = []
        if kind == _INLINE:
            if offset != used or offset + length > size:
                raise _corrupt("manifest section")
            append(Inline(inline[offset : offset + length]))
            used += length
        elif kind == _FIRST and piece < len(pieces or (pieces := ids())):
            if marks is not None:
                marks.append(mark)
            extents.append(Extent(pieces[piece], offset, length))
            total = length
        else:
            raise _corrupt("manifest section")
    if extents:
        append(BufferPlan(tuple(extents), total))
    if used != size:
        raise _corrupt("manifest section")
    return out


def _packed_bound(compressed: int, base: int) -> int:
    """The most a layout-2 section may expand to (writer and reader agree): bounds the
    allocation a forged section can ask for by the HEAD's own size."""
    return 2 * base + 64 * compressed + 4096


def compress_sections(payloads: Sequence[bytes]) -> list[bytes]:
    """Layout-1 section payloads, each replaced by its layout-2 form where that is smaller
    than compressing it alone (a zstd frame with the largest of the first few sections as
    its raw-content dictionary; that section stays layout 1, so decoding never chains)."""
    if len(payloads) < 3:
        return list(payloads)
    base = max(range(min(len(payloads), _BASE_CANDIDATES)), key=lambda i: len(payloads[i]))
    dictionary = zstandard.ZstdCompressionDict(
        payloads[base], dict_type=zstandard.DICT_TYPE_RAWCONTENT
    )
    with_dict = zstandard.ZstdCompressor(level=_LEVEL, dict_data=dictionary)
    alone = zstandard.ZstdCompressor(level=_LEVEL)
    out: list[bytes] = []
    for i, raw in enumerate(payloads):
        if i == base or len(raw) < _PACK_MIN:
            out.append(raw)
            continue
        packed = with_dict.compress(raw)
        if len(packed) + _PACKED_HEAD.size >= len(alone.compress(raw)) or len(raw) > _packed_bound(
            len(packed), len(payloads[base])
        ):
            out.append(raw)
            continue
        head = _PACKED_HEAD.pack(_PACKED_MAGIC, _PACKED_VERSION, base, len(raw))
        out.append(head + packed)
    return out


def _unpack(view: memoryview, base: Callable[[int], Buffer] | None) -> memoryview:
    """A layout-2 section's layout-1 payload (``base(i)``: section ``i``'s stored payload)."""
    if len(view) < _PACKED_HEAD.size:
        raise _corrupt("manifest section")
    _, version, number, size = _PACKED_HEAD.unpack_from(view)
    if version > _PACKED_VERSION:
        raise UnsupportedFormatError(
            f"the delta manifest is packed with version {version}, newer than this statevault "
            "reads: upgrade"
        )
    if base is None:
        raise _corrupt("manifest section")
    try:
        dictionary = memoryview(base(number)).cast("B")
    except IndexError as e:
        raise _corrupt("manifest section") from e
    body = view[_PACKED_HEAD.size :]
    if bytes(dictionary[:4]) != _SECTION_MAGIC or size > _packed_bound(len(body), len(dictionary)):
        raise _corrupt("manifest section")  # the dictionary is always a layout-1 section
    try:
        if zstandard.frame_content_size(body) != size:
            raise _corrupt("manifest section")
        d = zstandard.ZstdCompressionDict(
            bytes(dictionary), dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        raw = zstandard.ZstdDecompressor(dict_data=d).decompress(body, max_output_size=size)
    except zstandard.ZstdError as e:
        raise _corrupt("manifest section") from e
    if len(raw) != size:
        raise _corrupt("manifest section")
    return memoryview(raw)


def plans_of(
    sections: Iterable[tuple[Sequence[Segment], Sequence[int]]],
) -> dict[tuple[int, int], tuple[BufferPlan, int]]:
    """Each buffer's plan and fingerprint keyed by (section, ordinal among its buffers)."""
    plans: dict[tuple[int, int], tuple[BufferPlan, int]] = {}
    for s, (segments, marks) in enumerate(sections):
        k = 0
        for seg in segments:
            if isinstance(seg, BufferPlan):
                plans[(s, k)] = (seg, marks[k] if k < len(marks) else 0)
                k += 1
    return plans


assert _SEGMENT.size == 32
assert ID_SIZE == 16

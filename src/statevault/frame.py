"""The frame: the self-describing, tamper-evident envelope every stored state is written in.

A frame is a fixed 24-byte prefix (magic, format version, header length, two CRC32s), a JSON
header (generation, creation time, the transforms applied, the section table, a small
non-secret ``meta``), then numbered sections at 64-byte aligned offsets, each with its own
CRC32. A reader learns from the frame alone how to undo what the writer did, and can fetch one
section without the others. The byte layout and the compatibility rules are in docs/format.md.

Every single changed byte is detected: the prefix, the header (with its padding) and each
section are covered by a CRC32 (which catches every error of up to 32 consecutive bits), and
padding between sections must be zero. Each section also starts, before any transform, with a
32-byte binding (its index, the section count, the generation and a digest of the header) that
is checked after decoding: with encryption on, this ties each ciphertext to its place in its
frame (see docs/encryption.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .checksum import crc32
from .errors import (
    CorruptStateError,
    IntegrityError,
    NotAStateFileError,
    SerializationError,
    StateError,
    StateTooLargeError,
    TransformError,
    TruncatedStateError,
    UnsupportedFormatError,
)
from .keys import Keyring
from .transforms import Buffer, Transform, TransformRegistry, default_transforms

__all__ = [
    "ALIGN",
    "FORMAT_VERSION",
    "HEADER_PROBE",
    "MAGIC",
    "MAX_CREATED",
    "MANIFEST_VERSION",
    "MAX_GENERATION",
    "PLAIN_VERSION",
    "PREFIX_SIZE",
    "FrameHeader",
    "FrameReader",
    "NeedMoreBytes",
    "SectionEntry",
    "build_frame",
    "header_length",
    "parse_header",
]

#: PNG-style: a high-bit byte (7-bit transfers), "SVT", CR LF (newline conversion), ^Z, LF.
MAGIC: Final = b"\x89SVT\r\n\x1a\n"
#: The newest frame format this module reads (it reads every version up to this one).
FORMAT_VERSION: Final = 2
#: The version of a self-contained frame (every ``build_frame`` unless told otherwise).
PLAIN_VERSION: Final = 1
#: The version of a delta manifest: sections that refer to pieces stored in packs
#: (``statevault.delta``); an older reader must refuse it rather than misread it.
MANIFEST_VERSION: Final = 2
#: Section offsets (and the end of the header) are multiples of this.
ALIGN: Final = 64
#: Size of the fixed prefix: magic, version, header length, header CRC, prefix CRC.
PREFIX_SIZE: Final = 24
#: How many leading bytes a reader fetches first; the header of most states fits in it.
HEADER_PROBE: Final = 64 * 1024

_PREFIX: Final = struct.Struct("<8sIIII")  # magic, version, header_len, header_crc, prefix_crc
_BINDING: Final = struct.Struct("<IIQ16s")  # index, count, generation, header digest
_MAX_HEADER: Final = 256 * 1024 * 1024
#: The largest generation a header may carry: the next save's generation still fits the
#: binding's 64 bits with room to spare, so a forged 2**64 - 1 cannot block every later save.
MAX_GENERATION: Final = (1 << 63) - 1
#: The latest ``created`` a header may carry (9999-12-31T23:59:59Z, the end of ``datetime``).
MAX_CREATED: Final = 253402300799
#: More transforms than any real stack has; bounds the work a forged header can ask for.
MAX_TRANSFORMS: Final = 32
_ZEROS: Final = bytes(ALIGN)
_SMALL: Final = 4096  # pieces below this are coalesced into one write chunk


class NeedMoreBytes(TruncatedStateError):
    """The prefix given to ``parse_header`` ends inside the header: fetch ``needed`` bytes.

    A ``TruncatedStateError`` so that, uncaught, it still reads as "too short"; range readers
    catch it, fetch ``[len(prefix), needed)`` and parse again (``FrameReader`` does this).
    Never raised when ``total_size`` says the object itself is shorter than ``needed``.
    """

    def __init__(self, needed: int, have: int) -> None:
        super().__init__(
            f"the frame header needs the first {needed} bytes, only {have} were given: "
            "read more of the object and parse again"
        )
        self.needed = needed


@dataclass(frozen=True)
class SectionEntry:
    """Where a section is stored and its checksum: ``crc32`` of the ``length`` stored bytes."""

    offset: int
    length: int
    crc32: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class FrameHeader:
    """What a frame says about itself; read without fetching or decrypting any section.

    ``transforms`` lists ``{"name": ..., **params}`` in the order they were applied on write.
    ``size`` is the whole frame's size in bytes, ``header_size`` the offset of the first
    section. ``digest`` is the header digest each section's binding must repeat.
    """

    version: int
    generation: int
    created: float
    transforms: tuple[dict[str, Any], ...]
    sections: tuple[SectionEntry, ...]
    meta: dict[str, Any]
    size: int
    header_size: int = 0
    digest: bytes = field(default=b"", repr=False, compare=False)

    @property
    def encrypted(self) -> bool:
        """True if a transform in the stack declares ``encrypts`` (a key is needed to read
        sections); transforms are looked up in ``default_transforms``."""
        return self.encrypted_with(default_transforms)

    def encrypted_with(self, registry: TransformRegistry) -> bool:
        """``encrypted``, with the properties ``registry`` declares (a manager's own)."""
        for t in self.transforms:
            props = registry.properties(str(t.get("name")))
            if props is not None and props.encrypts:
                return True
        return False


def _align(n: int) -> int:
    return (n + ALIGN - 1) & -ALIGN


def _canonical(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _byte_view(buf: object, what: str) -> Buffer:
    """``buf`` as a flat byte buffer without copying (a numpy array's memoryview, say)."""
    if isinstance(buf, bytes | bytearray):
        return buf
    try:
        view = memoryview(buf)  # type: ignore[arg-type]
    except TypeError as e:
        raise SerializationError(f"{what} is a {type(buf).__name__}, not a byte buffer") from e
    if not view.c_contiguous:
        raise SerializationError(f"{what} is not a contiguous buffer")
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _nbytes(buf: Buffer) -> int:
    return buf.nbytes if isinstance(buf, memoryview) else len(buf)


# ---------------------------------------------------------------------------------- writing


def build_frame(
    sections: Sequence[Sequence[Buffer]],
    *,
    transforms: Sequence[Transform],
    generation: int,
    meta: Mapping[str, Any] | None = None,
    created: float | None = None,
    version: int = PLAIN_VERSION,
) -> list[Buffer]:
    """Frame ``sections`` (each a list of byte chunks); return the frame's chunks, in order.

    Write the chunks back to back. Each section goes through ``transforms`` in order. Without
    transforms large chunks are passed through uncopied (so do not modify them before the
    write); small pieces are coalesced. ``meta`` must be small non-secret JSON: it is stored in
    clear. ``version`` is ``PLAIN_VERSION`` except for a delta manifest (``MANIFEST_VERSION``,
    written by ``statevault.delta``). Raises ``SerializationError`` for a non-JSON
    ``meta``/params or a non-buffer chunk, ``TransformError`` if a transform fails.
    """
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise TypeError(f"generation must be an int, not {type(generation).__name__}")
    if not 0 <= generation <= MAX_GENERATION:
        raise ValueError(f"generation must be in [0, 2**63), not {generation}")
    when = time.time() if created is None else float(created)
    if not (math.isfinite(when) and 0 <= when <= MAX_CREATED):
        raise ValueError(f"created must be a unix time in [0, {MAX_CREATED}], not {created!r}")
    stack = list(transforms)
    for t in stack:
        if not isinstance(t, Transform):
            raise TypeError(f"transforms must be Transform objects, not {type(t).__name__}")
    bound = {
        "created": when,
        "generation": generation,
        "meta": dict(meta or {}),
        "transforms": [{"name": t.name, **t.params} for t in stack],
    }
    try:
        bound_json = _canonical(bound)
    except (TypeError, ValueError) as e:
        raise SerializationError(
            f"the frame meta and transform params must be JSON values with str keys ({e})"
        ) from e
    # The digest is taken over exactly what a reader will re-serialise from the parsed header.
    header: dict[str, Any] = json.loads(bound_json)
    digest = hashlib.sha256(bound_json).digest()[:16]

    count = len(sections)
    table: list[list[int]] = []
    stored: list[list[Buffer]] = []
    for index, section in enumerate(sections):
        binding = _BINDING.pack(index, count, generation, digest)
        chunks = [_byte_view(c, f"chunk {j} of section {index}") for j, c in enumerate(section)]
        parts: list[Buffer]
        if stack:
            data: Buffer = b"".join([binding, *chunks])
            for t in stack:
                data = _run(t, t.encode, data, index, "encode")
            parts = [data]
        else:
            parts = [binding, *chunks]
        crc = 0
        length = 0
        for p in parts:
            crc = crc32(p, crc)  # sections: the fast CRC (same values as zlib's)
            length += _nbytes(p)
        table.append([length, crc])
        stored.append(parts)

    header["sections"] = table
    header_json = _canonical(header)
    if len(header_json) > _MAX_HEADER:
        raise SerializationError(f"the frame header would be {len(header_json)} bytes: too many")
    data_start = _align(PREFIX_SIZE + len(header_json))
    body = header_json + bytes(data_start - PREFIX_SIZE - len(header_json))
    if version not in (PLAIN_VERSION, MANIFEST_VERSION):
        raise ValueError(f"version must be {PLAIN_VERSION} or {MANIFEST_VERSION}, not {version}")
    first = _PREFIX.pack(MAGIC, version, len(header_json), zlib.crc32(body), 0)[:20]
    prefix = first + struct.pack("<I", zlib.crc32(first))

    out: list[Buffer] = []
    pending = bytearray(prefix + body)
    position = data_start
    for index, parts in enumerate(stored):
        for p in parts:
            n = _nbytes(p)
            if n < _SMALL:
                pending += p
            else:
                if pending:
                    out.append(bytes(pending))
                    pending = bytearray()
                out.append(p)
            position += n
        if index + 1 < count:
            gap = _align(position) - position
            pending += _ZEROS[:gap]
            position += gap
    if pending:
        out.append(bytes(pending))
    return out


def _run(t: Transform, fn: Callable[[Buffer], Buffer], data: Buffer, index: int, op: str) -> Buffer:
    """Call a transform's encode/decode; anything but a StateError becomes a TransformError."""
    try:
        result = fn(data)
        view = memoryview(result)
    except StateError:
        raise
    except Exception as e:
        # The type only: a user transform's message could quote the data it choked on.
        raise TransformError(
            f"transform {t.name!r} failed to {op} section {index}: {type(e).__name__}"
        ) from e
    if not view.c_contiguous:
        raise TransformError(f"transform {t.name!r} returned a non-contiguous buffer")
    if isinstance(result, bytes | bytearray):
        return result
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _decode(t: Transform, data: Buffer, index: int, limit: int | None) -> Buffer:
    """Undo one transform; with a ``limit`` never let its output exceed it."""
    if limit is None:
        return _run(t, t.decode, data, index, "decode")
    bounded = t.decode_bounded
    if bounded is not None:
        out = _run(t, lambda d: bounded(d, limit), data, index, "decode")
    else:
        out = _run(t, t.decode, data, index, "decode")
    if _nbytes(out) > limit:
        raise StateTooLargeError(
            f"section {index} decodes to {_nbytes(out)} bytes through {t.name!r}, above this "
            f"reader's max_state_bytes ({limit}): raise max_state_bytes if the state is genuine"
        )
    return out


# ---------------------------------------------------------------------------------- reading


def _need(needed: int, have: int, total_size: int | None) -> None:
    if total_size is not None and total_size < needed:
        raise TruncatedStateError(
            f"the object is {total_size} bytes but its frame header needs {needed}: it was cut "
            "short (an interrupted write or copy); restore a backup or save again"
        )
    raise NeedMoreBytes(needed, have)


def _check_prefix(view: memoryview, total_size: int | None) -> tuple[int, int, int, int]:
    """Validate magic, prefix CRC and version; return (version, header_len, header_crc, start)."""
    have = len(view)
    if have == 0 and not total_size:
        raise TruncatedStateError(
            "the object is empty (0 bytes): an interrupted write, or not a saved state; "
            "restore a backup or save again"
        )
    if bytes(view[: len(MAGIC)]) != MAGIC[: min(have, len(MAGIC))]:
        raise NotAStateFileError(
            "not a statevault state: it does not start with the statevault magic bytes (or a "
            "text-mode transfer changed them)"
        )
    if have < PREFIX_SIZE:
        _need(PREFIX_SIZE, have, total_size)
    _, version, header_len, header_crc, prefix_crc = _PREFIX.unpack_from(view)
    # Checked before the version is believed: a damaged byte must never pass for a new format.
    if zlib.crc32(view[:20]) != prefix_crc:
        raise IntegrityError(
            "the frame prefix is damaged (checksum mismatch): the object was changed after "
            "writing; restore a backup"
        )
    if version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"this state was written by a newer statevault (format {version}); upgrade "
            f"statevault to read it (this one reads formats up to {FORMAT_VERSION})"
        )
    if version < 1:
        raise CorruptStateError(f"format version {version} does not exist: not a statevault state")
    if header_len > _MAX_HEADER:
        raise CorruptStateError(f"the frame header claims {header_len} bytes: not plausible")
    return version, header_len, header_crc, _align(PREFIX_SIZE + header_len)


def header_length(prefix: Buffer) -> int:
    """How many leading bytes hold the whole header (the first section's offset).

    Needs the first ``PREFIX_SIZE`` bytes (else ``NeedMoreBytes``); validates magic, prefix
    checksum and version like ``parse_header``.
    """
    return _check_prefix(memoryview(prefix).cast("B"), None)[3]


def parse_header(prefix: Buffer, *, total_size: int | None = None) -> FrameHeader:
    """Parse and check a frame's header from its first bytes (``HEADER_PROBE`` is usually enough).

    ``total_size`` is the object's size if known: then truncation and trailing bytes are
    detected here; without it, only when sections are read. Raises ``TruncatedStateError`` for
    an empty or cut-short object, ``NotAStateFileError`` for a wrong magic,
    ``IntegrityError`` for a checksum mismatch, ``UnsupportedFormatError`` for a newer format,
    ``CorruptStateError`` for a well-checksummed but malformed header, and ``NeedMoreBytes``
    when ``prefix`` is shorter than the header but the object may be longer.
    """
    view = memoryview(prefix).cast("B")
    if total_size is not None and total_size < len(view):
        view = view[:total_size]
    version, header_len, header_crc, data_start = _check_prefix(view, total_size)
    if len(view) < data_start:
        _need(data_start, len(view), total_size)
    body = view[PREFIX_SIZE:data_start]
    if zlib.crc32(body) != header_crc:
        raise IntegrityError(
            "the frame header is damaged (checksum mismatch): the object was changed after "
            "writing; restore a backup"
        )
    if bytes(body[header_len:]) != bytes(data_start - PREFIX_SIZE - header_len):
        raise CorruptStateError("the padding after the frame header is not zero")
    try:
        doc = json.loads(bytes(body[:header_len]))
        fields = _fields(doc)
        bound = {k: v for k, v in doc.items() if k != "sections"}
        digest = hashlib.sha256(_canonical(bound)).digest()[:16]
    except (ValueError, TypeError, RecursionError) as e:
        raise CorruptStateError(
            f"the frame header is malformed although its checksum matches ({e}): it was not "
            "written by statevault"
        ) from e
    generation, created, transforms, meta, table = fields
    entries: list[SectionEntry] = []
    position = data_start
    for length, crc in table:
        start = _align(position)
        entries.append(SectionEntry(start, length, crc))
        position = start + length
    size = position
    if total_size is not None:
        if total_size < size:
            raise TruncatedStateError(
                f"the object is {total_size} bytes but its frame says {size}: it was cut short "
                "(an interrupted write or copy); restore a backup or save again"
            )
        if total_size > size:
            raise IntegrityError(
                f"the object has {total_size - size} unexpected bytes after the end of its "
                "frame: it was changed after writing"
            )
    return FrameHeader(
        version=version,
        generation=generation,
        created=created,
        transforms=transforms,
        sections=tuple(entries),
        meta=meta,
        size=size,
        header_size=data_start,
        digest=digest,
    )


def _short(value: Any) -> str:
    """A bounded repr for error messages (a forged field may be 400 digits long)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"<an int of {len(str(abs(value)))} digits>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fields(
    doc: Any,
) -> tuple[int, float, tuple[dict[str, Any], ...], dict[str, Any], list[tuple[int, int]]]:
    """The known header fields, type-checked; ValueError if any is missing or wrong."""
    if not isinstance(doc, dict):
        raise ValueError("the header is not a JSON object")
    generation = doc.get("generation")
    if (
        isinstance(generation, bool)
        or not isinstance(generation, int)
        or not 0 <= generation <= MAX_GENERATION
    ):
        raise ValueError(f"generation {_short(generation)} is not an int in [0, 2**63)")
    created = doc.get("created")
    # Compared before any conversion: float() of a 400-digit int raises OverflowError, and a
    # time past year 9999 cannot become a datetime.
    if (
        isinstance(created, bool)
        or not isinstance(created, int | float)
        or not 0 <= created <= MAX_CREATED
    ):
        raise ValueError(f"created {_short(created)} is not a unix time in [0, {MAX_CREATED}]")
    transforms = doc.get("transforms")
    if (
        not isinstance(transforms, list)
        or len(transforms) > MAX_TRANSFORMS
        or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in transforms)
    ):
        raise ValueError("bad transforms")
    meta = doc.get("meta")
    if not isinstance(meta, dict):
        raise ValueError("bad meta")
    sections = doc.get("sections")
    if not isinstance(sections, list):
        raise ValueError("bad sections")
    table: list[tuple[int, int]] = []
    for entry in sections:
        # Entries may grow extra items in later minor revisions; the first two are fixed.
        if not isinstance(entry, list) or len(entry) < 2:
            raise ValueError("bad section entry")
        length, crc = entry[0], entry[1]
        if (
            isinstance(length, bool)
            or not isinstance(length, int)
            or not 0 <= length < 1 << 63
            or isinstance(crc, bool)
            or not isinstance(crc, int)
            or not 0 <= crc < 1 << 32
        ):
            raise ValueError("bad section entry")
        table.append((length, crc))
    return generation, float(created), tuple(transforms), meta, table


ReadRange = Callable[[int, int], Buffer]


class FrameReader:
    """Reads sections lazily from a frame: only the bytes of the sections asked for are fetched.

    ``read_range(start, end)`` returns the object's bytes ``[start, end)`` (the signature of
    ``Store.read_range``, so a store's method can be passed as it is), fewer only where the
    object ends; it should raise ``StorageError`` itself on failure. The
    header is read at construction (``HEADER_PROBE`` bytes, more if the header is longer);
    sections that lie inside those bytes cost no further read. Give ``size`` when known so
    truncation and trailing bytes are caught up front. Transforms are rebuilt from the frame by
    ``transforms`` (default ``default_transforms``) with ``keyring``, at the first section read,
    so the header of an encrypted state can be read without a key. ``section`` may be called
    from several threads if ``read_range`` allows it. ``probe``: how many bytes the first read
    asks for (a caller that knows the header's size passes it: a delta pack).
    """

    def __init__(
        self,
        read_range: ReadRange,
        *,
        size: int | None = None,
        transforms: TransformRegistry | None = None,
        keyring: Keyring | None = None,
        max_bytes: int | None = None,
        require_authentication: bool = False,
        probe: int = HEADER_PROBE,
    ) -> None:
        self._read = read_range
        self._max_bytes = max_bytes
        self._require_authentication = require_authentication
        self._registry = transforms if transforms is not None else default_transforms
        self._keyring = keyring
        self._stack: list[Transform] | None = None
        want = probe if size is None else min(size, probe)
        cache = self._fetch(0, want)
        known = size
        if len(cache) < want:
            known = len(cache)  # the object ends there, whatever we were told
        while True:
            try:
                header = parse_header(cache, total_size=known)
                break
            except NeedMoreBytes as e:
                more = self._fetch(len(cache), e.needed - len(cache))
                if len(more) < e.needed - len(cache):
                    known = len(cache) + len(more)
                cache = memoryview(bytes(cache) + bytes(more))
        if max_bytes is not None and header.size > max_bytes:
            raise StateTooLargeError(
                f"the frame is {header.size} bytes, above this reader's max_state_bytes "
                f"({max_bytes}): raise max_state_bytes if the state is genuine"
            )
        self.header: FrameHeader = header
        self._cache = cache

    @classmethod
    def from_bytes(
        cls,
        data: Buffer,
        *,
        transforms: TransformRegistry | None = None,
        keyring: Keyring | None = None,
        max_bytes: int | None = None,
        require_authentication: bool = False,
    ) -> FrameReader:
        """A reader over a frame already in memory; sections are zero-copy slices of ``data``.

        With no transforms a section is a ``memoryview`` into ``data`` (writable if ``data``
        is a ``bytearray``): keep ``data`` alive and unmodified while you use it.
        """
        view = memoryview(data).cast("B")

        def read_range(start: int, end: int) -> Buffer:
            return view[start:end]

        return cls(
            read_range,
            size=len(view),
            transforms=transforms,
            keyring=keyring,
            max_bytes=max_bytes,
            require_authentication=require_authentication,
        )

    def _fetch(self, offset: int, length: int) -> memoryview:
        if length <= 0:
            return memoryview(b"")
        view = memoryview(self._read(offset, offset + length))
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        return view[:length]

    def _span(self, offset: int, length: int) -> memoryview:
        if offset + length <= len(self._cache):
            return self._cache[offset : offset + length]
        return self._fetch(offset, length)

    def _transforms(self) -> list[Transform]:
        stack = self._stack
        if stack is None:
            stack = [
                self._registry.build(
                    entry["name"], {k: v for k, v in entry.items() if k != "name"}, self._keyring
                )
                for entry in self.header.transforms
            ]
            if self._require_authentication and not any(t.authenticates for t in stack):
                raise IntegrityError(
                    "this state is not signed or encrypted, but this reader requires an "
                    "authenticated state (signing_key=...): it may have been replaced or had "
                    "its signature stripped; restore a backup, or read it without signing_key"
                )
            self._stack = stack
        return stack

    def section(self, index: int) -> Buffer:
        """Section ``index``'s payload: checksum verified, transforms undone, binding checked.

        Writable (a ``bytearray`` view) when decoding produced a fresh buffer, e.g. after
        zstd or Fernet; with no transforms a ``memoryview`` of the underlying bytes. Raises
        ``IndexError`` for a section number the frame does not have.
        """
        entries = self.header.sections
        if not 0 <= index < len(entries):
            raise IndexError(f"section {index} does not exist: the frame has {len(entries)}")
        stack = self._transforms()  # first: a missing key is reported before any fetch
        entry = entries[index]
        end = entries[index + 1].offset if index + 1 < len(entries) else entry.end
        span = self._span(entry.offset, end - entry.offset)
        if len(span) < end - entry.offset:
            raise TruncatedStateError(
                f"section {index} ends at byte {end} but the object ends at byte "
                f"{entry.offset + len(span)}: it was cut short; restore a backup or save again"
            )
        stored = span[: entry.length]
        if crc32(stored) != entry.crc32:
            raise IntegrityError(
                f"section {index} is damaged (checksum mismatch): the object was changed after "
                "writing; restore a backup"
            )
        if bytes(span[entry.length :]) != _ZEROS[: len(span) - entry.length]:
            raise IntegrityError(
                f"the padding after section {index} is not zero: the object was changed after "
                "writing; restore a backup"
            )
        data: Buffer = stored
        limit = self._max_bytes
        for t in reversed(stack):
            data = _decode(t, data, index, limit)
        view = memoryview(data)
        if len(view) < _BINDING.size:
            raise IntegrityError(f"section {index} decodes to too few bytes to be a section")
        idx, count, generation, digest = _BINDING.unpack_from(view)
        if digest != self.header.digest or generation != self.header.generation:
            raise IntegrityError(
                f"section {index} belongs to another save (generation {generation}, this frame "
                f"is generation {self.header.generation}) or its header was altered: the "
                "object was assembled from different saves or changed after writing"
            )
        if (idx, count) != (index, len(entries)):
            raise IntegrityError(
                f"section {index} is stored as section {idx} of {count}: sections were moved "
                "or removed after writing"
            )
        return view[_BINDING.size :]

    def verify(self) -> None:
        """Read, check and decode every section (whole-frame integrity); raise on the first error.

        Decodes each section in turn and drops it, so peak memory is one section.
        """
        for index in range(len(self.header.sections)):
            self.section(index)

"""Reading a frame's prefix and header: validate magic, version, CRCs and every header field.

``parse_header`` raises a typed ``StateError`` for anything malformed, or ``NeedMoreBytes``
when the bytes given stop before the header does.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from typing import Any

from ..errors import (
    CorruptStateError,
    IntegrityError,
    NotAStateFileError,
    TruncatedStateError,
    UnsupportedFormatError,
)
from ..transforms import Buffer
from .format import (
    _MAX_HEADER,
    _PREFIX,
    FORMAT_VERSION,
    MAGIC,
    MAX_CREATED,
    MAX_GENERATION,
    MAX_TRANSFORMS,
    PREFIX_SIZE,
    FrameHeader,
    NeedMoreBytes,
    SectionEntry,
    _align,
    _canonical,
)


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

"""Writing a frame: ``build_frame`` turns sections into the frame's chunks (see docs/format.md)."""

from __future__ import annotations

import hashlib
import json
import math
import struct
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..checksum import crc32
from ..errors import SerializationError
from ..transforms import Buffer, Transform
from .format import (
    _BINDING,
    _MAX_HEADER,
    _PREFIX,
    _SMALL,
    _ZEROS,
    MAGIC,
    MANIFEST_VERSION,
    MAX_CREATED,
    MAX_GENERATION,
    PLAIN_VERSION,
    PREFIX_SIZE,
    _align,
    _byte_view,
    _canonical,
    _nbytes,
    _run,
)


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

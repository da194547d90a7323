"""Take real frames apart and put them back together, with checksums and bindings recomputed,
so that a forged or mutated field reaches the parser that must judge it (instead of being
stopped, correctly but uninterestingly, by a CRC).

Works on frames whose transforms are ``[]`` or ``[zstd]`` (the forger decompresses and
recompresses); encrypted frames can be taken apart but not re-bound.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import zstandard

from statevault.frame import ALIGN, MAGIC, PREFIX_SIZE

__all__ = ["Frame", "canonical", "split"]

_PREFIX = struct.Struct("<8sIIII")
_BINDING = struct.Struct("<IIQ16s")


def canonical(obj: Any) -> bytes:
    """The header serialisation statevault writes (sorted keys, no spaces, ASCII)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _align(n: int) -> int:
    return (n + ALIGN - 1) & -ALIGN


@dataclass
class Frame:
    """A frame taken apart: ``header`` (the JSON object), ``stored`` (each section's stored
    bytes), and for ``[]``/``[zstd]`` frames ``payloads`` (each section after its binding)."""

    version: int
    header: dict[str, Any]
    stored: list[bytes]
    payloads: list[bytes] | None = field(default=None)
    #: Whether the sections were zstd-compressed when taken apart (re-bound the same way).
    compressed: bool = False

    def assemble(
        self,
        *,
        raw_header: bytes | None = None,
        rebind: bool = True,
        keep_table: bool = False,
        version: int | None = None,
    ) -> bytes:
        """The frame's bytes with every checksum right (unless told otherwise).

        ``rebind``: rebuild each section from ``payloads`` with a binding that matches the
        (possibly edited) header, so edits to the header or a payload reach the codec.
        ``keep_table``: keep ``header["sections"]`` as it is (to fuzz the table itself).
        ``raw_header``: use these bytes as the header JSON verbatim.
        """
        header = dict(self.header)
        stored = list(self.stored)
        if rebind and self.payloads is not None:
            bound = {k: v for k, v in header.items() if k != "sections"}
            digest = hashlib.sha256(canonical(bound)).digest()[:16]
            generation = header.get("generation", 0)
            if isinstance(generation, int) and 0 <= generation < 1 << 64:
                stored = []
                for index, payload in enumerate(self.payloads):
                    data = _BINDING.pack(index, len(self.payloads), generation, digest) + payload
                    if self.compressed:
                        data = zstandard.ZstdCompressor(write_content_size=True).compress(data)
                    stored.append(data)
        if not keep_table:
            header["sections"] = [[len(s), zlib.crc32(s)] for s in stored]
        text = canonical(header) if raw_header is None else raw_header
        start = _align(PREFIX_SIZE + len(text))
        body = text + bytes(start - PREFIX_SIZE - len(text))
        first = _PREFIX.pack(
            MAGIC, self.version if version is None else version, len(text), zlib.crc32(body), 0
        )[:20]
        out = bytearray(first + struct.pack("<I", zlib.crc32(first)) + body)
        for index, s in enumerate(stored):
            if index:
                out += bytes(_align(len(out)) - len(out))
            out += s
        return bytes(out)


def split(data: bytes) -> Frame:
    """Take a well-formed frame apart (raises ValueError if it is not one)."""
    magic, version, header_len, _, _ = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ValueError("not a frame")
    header = json.loads(data[PREFIX_SIZE : PREFIX_SIZE + header_len])
    position = _align(PREFIX_SIZE + header_len)
    stored = []
    for length, _crc in header["sections"]:
        position = _align(position)
        stored.append(data[position : position + length])
        position += length
    frame = Frame(version, header, stored)
    names = [t.get("name") for t in header["transforms"]]
    if names in ([], ["zstd"]):
        raw = stored
        if names == ["zstd"]:
            raw = [zstandard.ZstdDecompressor().decompress(s) for s in stored]
        frame.payloads = [r[_BINDING.size :] for r in raw]
        frame.compressed = names == ["zstd"]
    return frame

"""The frame's constants and records (prefix, header, section entry) and the helpers both
sides share: alignment, canonical JSON, byte views, running one transform.

The byte layout is in docs/format.md; ``statevault.frame`` re-exports the public names.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import (
    SerializationError,
    StateError,
    StateTooLargeError,
    TransformError,
    TruncatedStateError,
)
from ..transforms import Buffer, Transform, TransformRegistry, default_transforms

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
        """The offset just past the section's stored bytes (``offset + length``)."""
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

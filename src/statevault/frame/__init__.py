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

from .build import build_frame
from .format import (
    ALIGN,
    FORMAT_VERSION,
    HEADER_PROBE,
    MAGIC,
    MANIFEST_VERSION,
    MAX_CREATED,
    MAX_GENERATION,
    PLAIN_VERSION,
    PREFIX_SIZE,
    FrameHeader,
    NeedMoreBytes,
    SectionEntry,
)
from .header import header_length, parse_header
from .reader import FrameReader

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

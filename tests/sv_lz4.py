"""An lz4 compressor for statevault, written as a third-party package would write it.

Only public API: ``Transform`` declaring ``compresses=True`` and a bounded decode, and a
factory the registry (or an entry point) rebuilds it with. Used by test_transforms_extend.py,
both registered in code and installed as an entry point of a real distribution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lz4.frame as lz4frame

from statevault.errors import StateTooLargeError, TransformError
from statevault.keys import Keyring
from statevault.transforms import Buffer, Transform


def lz4(level: int = 0) -> Transform:
    """lz4 frame compression at ``level`` (0 fast .. 16 high compression)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 16:
        raise ValueError(f"lz4 level must be an int in 0..16, not {level!r}")

    def encode(data: Buffer) -> Buffer:
        return lz4frame.compress(data, compression_level=level, store_size=True)

    def decode_bounded(data: Buffer, limit: int) -> Buffer:
        # In 1 MiB steps: lz4 allocates max_length up front, so one call with the limit would
        # allocate the limit itself.
        decompressor = lz4frame.LZ4FrameDecompressor()
        out = bytearray()
        try:
            chunk = decompressor.decompress(data, max_length=1 << 20)
            while True:
                out += chunk
                if len(out) > limit:
                    raise StateTooLargeError(f"lz4 data decompresses to more than {limit} bytes")
                if decompressor.eof:
                    break
                if decompressor.needs_input:
                    raise TransformError("lz4 data ends before its frame does")
                chunk = decompressor.decompress(b"", max_length=1 << 20)
        except RuntimeError as e:
            raise TransformError(f"lz4 could not decompress: {e}") from e
        if decompressor.unused_data:
            raise TransformError("lz4 data has trailing bytes")
        return out

    def decode(data: Buffer) -> Buffer:
        return decode_bounded(data, 1 << 40)

    return Transform(
        "lz4", encode, decode, {"level": level}, compresses=True, decode_bounded=decode_bounded
    )


def lz4_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    level = params.get("level", 0)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 16:
        level = 0  # any level decodes
    return lz4(level)


# Declared on the factory, so an entry point pointing at it brings the property along.
lz4_factory.compresses = True  # type: ignore[attr-defined]

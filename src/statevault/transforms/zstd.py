"""zstd compression (``compresses=True``): the default ``compression=`` of every manager.

Decoding is bounded: the output buffer is allocated from the size the zstd frame declares only
after that size is checked against the reader's limit and against what the compressed bytes
can possibly expand to, so a forged frame that claims gigabytes costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

import zstandard

from ..errors import StateTooLargeError, TransformError
from ..keys import Keyring
from ..membuf import writable_buffer
from .base import Buffer, Transform

__all__ = ["MAX_RATIO", "zstd", "zstd_factory"]

_ZSTD_MIN: Final = -(1 << 17)
_ZSTD_MAX: Final = 22
#: The most a zstd frame can expand: its densest block (RLE) is 4 bytes for 128 KiB of output.
MAX_RATIO: Final = 1 << 15
_READ: Final = 1 << 20
_UNBOUNDED: Final = 1 << 62


def _nbytes(data: Buffer) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


class _Zstd:
    """zstd with one compressor/decompressor per thread (zstandard's are not thread-safe)."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._local = threading.local()

    def encode(self, data: Buffer) -> Buffer:
        cctx = getattr(self._local, "cctx", None)
        if cctx is None:
            # Content size in the zstd frame header lets decode allocate the output once.
            cctx = zstandard.ZstdCompressor(
                level=self.level, threads=0, write_content_size=True, write_checksum=False
            )
            self._local.cctx = cctx
        try:
            return bytes(cctx.compress(data))
        except zstandard.ZstdError as e:
            raise TransformError(f"zstd could not compress: {e}") from e

    def decode(self, data: Buffer) -> Buffer:
        return self.decode_bounded(data, _UNBOUNDED)

    def decode_bounded(self, data: Buffer, limit: int) -> Buffer:
        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = zstandard.ZstdDecompressor()
            self._local.dctx = dctx
        ceiling = min(limit, _nbytes(data) * MAX_RATIO)
        try:
            size = zstandard.frame_content_size(data)
            if size > ceiling:
                raise _too_large(size, _nbytes(data), limit)
            reader = dctx.stream_reader(data, read_size=_READ, read_across_frames=False)
            if size < 0:
                # A frame written without its content size (not by us): stream it in pieces,
                # never holding more than the ceiling.
                pieces: list[bytes] = []
                got = 0
                while chunk := reader.read(_READ):
                    got += len(chunk)
                    if got > ceiling:
                        raise _too_large(got, _nbytes(data), limit)
                    pieces.append(chunk)
                out = bytearray(b"".join(pieces))
                if not _at_end(data, dctx):
                    raise TransformError("zstd data ends before its frame does")
                return out
            # Decompress straight into fresh memory: one allocation, and writable for the codec
            # (a bytearray, or for a large section a mapping with huge pages: statevault.membuf).
            buf = writable_buffer(size)
            view = memoryview(buf)
            got = 0
            while got < size:
                n = reader.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != size or reader.read(1):
                raise TransformError(
                    f"zstd data decompressed to {got} bytes, its header says {size}"
                )
            return buf
        except (zstandard.ZstdError, MemoryError, OverflowError, ValueError) as e:
            raise TransformError(f"zstd could not decompress the data: {e}") from e


def _at_end(data: Buffer, dctx: Any) -> bool:
    """Whether ``data`` holds a complete zstd frame (stream_reader stops quietly if not)."""
    obj = dctx.decompressobj()
    # Feed the input in pieces and drop the output: only the end-of-frame flag matters.
    view = memoryview(data)
    for start in range(0, max(1, len(view)), _READ):
        obj.decompress(view[start : start + _READ])
        if obj.eof:
            return True
    return bool(obj.eof)


def _too_large(size: int, stored: int, limit: int) -> StateTooLargeError:
    if size > limit:
        return StateTooLargeError(
            f"zstd data would decompress to {size} or more bytes, above this reader's limit of "
            f"{limit} (max_state_bytes): raise max_state_bytes if the state is genuine"
        )
    return StateTooLargeError(
        f"zstd data claims {size} bytes from {stored} compressed bytes, more than zstd can "
        f"expand ({MAX_RATIO}x): the data was forged or damaged; restore a backup"
    )


def zstd(level: int = 3) -> Transform:
    """zstd compression at ``level`` (-131072..22; 3 is fast, 19+ is slow); any level decodes.

    Single-threaded per call (``threads=0``); one compressor per thread is reused.
    """
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"zstd level must be an int, not {type(level).__name__}")
    if not _ZSTD_MIN <= level <= _ZSTD_MAX:
        raise ValueError(f"zstd level must be between {_ZSTD_MIN} and {_ZSTD_MAX}, not {level}")
    impl = _Zstd(level)
    return Transform(
        "zstd",
        impl.encode,
        impl.decode,
        {"level": level},
        compresses=True,
        decode_bounded=impl.decode_bounded,
    )


def zstd_factory(params: Mapping[str, Any], keyring: Keyring | None) -> Transform:
    """The registry factory: rebuilds ``zstd`` from a frame's params (any level decodes)."""
    # Decoding does not depend on the level, so a level this build would reject (or a missing
    # one) must not make a state unreadable.
    level = params.get("level", 3)
    if isinstance(level, bool) or not isinstance(level, int) or not _ZSTD_MIN <= level <= _ZSTD_MAX:
        level = 3
    return zstd(level)

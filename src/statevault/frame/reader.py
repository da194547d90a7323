"""Reading sections from a frame: ``FrameReader`` fetches, checks and decodes one section at a
time, reading only the bytes of the sections asked for.
"""

from __future__ import annotations

from collections.abc import Callable

from ..checksum import crc32
from ..errors import (
    IntegrityError,
    StateTooLargeError,
    TruncatedStateError,
)
from ..keys import Keyring
from ..transforms import Buffer, Transform, TransformRegistry, default_transforms
from .format import (
    _BINDING,
    _ZEROS,
    HEADER_PROBE,
    FrameHeader,
    NeedMoreBytes,
    _decode,
)
from .header import parse_header

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

    def section_parts(self, index: int) -> list[Buffer]:
        """Section ``index``'s payload as parts to read back to back (``Codec.loads_parts``):
        here the one buffer ``section`` gives; a delta manifest's reader gives its pieces
        without joining them. A writable part is memory this reader gives away (nothing
        else reads it), so a codec may build arrays on it; read-only parts may be shared."""
        return [self.section(index)]

    def verify(self) -> None:
        """Read, check and decode every section (whole-frame integrity); raise on the first error.

        Decodes each section in turn and drops it, so peak memory is one section.
        """
        for index in range(len(self.header.sections)):
            self.section(index)

"""CRC-32 for the frame's section checksums: ISA-L's when installed, else zlib's (same values).

The frame checksums every stored byte on save and load (docs/format.md): on a plain load of a
large state that CRC is the biggest single cost after reading the file (zlib 1.2's CRC runs at
about 3 GB/s here, ISA-L's folding CRC at about 10 GB/s: 15 ms against 5 ms for 49.5 MB,
bench/README.md "Strings"; a delta load's pieces of 5-250 KB: about 20x). Both compute the
same CRC-32 (the zlib/PNG polynomial), so files do not depend on which one wrote or reads
them. ISA-L is a default dependency on x86_64 and arm64 machines, where it has wheels;
elsewhere ``pip install 'statevault[fast]'`` builds it, or zlib's is used.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

__all__ = ["BACKEND", "crc32"]

crc32: Callable[..., int]
"""``crc32(data, value=0)``: zlib's ``crc32`` signature and results, for any byte buffer."""

try:
    from isal.isal_zlib import crc32 as _isal_crc32
except ImportError:  # the optional accelerator is not installed: zlib is just slower
    crc32 = zlib.crc32
    BACKEND = "zlib"
else:
    crc32 = _isal_crc32
    BACKEND = "isal"

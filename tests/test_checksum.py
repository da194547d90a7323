"""statevault.checksum: ISA-L's CRC-32 and zlib's give the same values, and zlib's is used
when ISA-L is not installed (files never depend on which one wrote them)."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statevault import StateManager, checksum


@given(data=st.binary(max_size=70_000), start=st.integers(0, 2**32 - 1), cut=st.integers(0, 70_000))
def test_the_crc_is_zlibs_for_any_bytes_and_any_running_value(
    data: bytes, start: int, cut: int
) -> None:
    assert checksum.crc32(data) == zlib.crc32(data)
    assert checksum.crc32(data, start) == zlib.crc32(data, start)
    head, tail = data[:cut], data[cut:]
    assert checksum.crc32(tail, checksum.crc32(head)) == zlib.crc32(data)


def test_buffers_of_every_kind_are_accepted() -> None:
    data = bytes(range(256)) * 300
    view = memoryview(bytearray(data))
    for buf in (data, bytearray(data), view, view[1000:]):
        assert checksum.crc32(buf) == zlib.crc32(buf)


def test_isal_is_installed_where_the_dependency_marker_says() -> None:
    import platform

    if platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"):
        pytest.skip("isal is a default dependency only on x86_64 and arm64 machines")
    assert checksum.BACKEND == "isal"


def test_without_isal_zlib_reads_what_isal_wrote(tmp_path: Path) -> None:
    """A state saved here (ISA-L where installed) loads in a process where ``isal`` cannot be
    imported, and that process checksums with zlib."""
    path = tmp_path / "s.sv"
    state = {"prices": [1.5, 2.5] * 1000, "name": "EURUSD"}
    StateManager(path, spool_dir=False, compression=None).save(state)
    code = (
        "import sys; sys.modules['isal'] = None; sys.modules['isal.isal_zlib'] = None\n"
        "from statevault import StateManager, checksum\n"
        f"s = StateManager({str(path)!r}, spool_dir=False).load()\n"
        "print(checksum.BACKEND, s['name'], len(s['prices']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["zlib", "EURUSD", "2000"]

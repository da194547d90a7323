"""Fresh writable memory for large reads (statevault.membuf) and the frame's CRC (checksum).

Large buffers are mappings rather than bytearrays (issue 9's string loads): what a caller may
rely on is checked here on real files, real zstd data and real numpy arrays: the bytes are the
stored ones, the memory is writable and wrapped by numpy without a copy, and each read owns
its memory (writing to one result changes neither the file nor another read).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from statevault.checksum import crc32
from statevault.membuf import MAPPED_MIN, fresh_buffer, writable_buffer
from statevault.storage import open_store
from statevault.transforms import zstd


@pytest.mark.parametrize("size", [0, 1, 4096, MAPPED_MIN - 1, MAPPED_MIN, MAPPED_MIN + 12345])
def test_writable_buffer_is_zeroed_writable_and_sized(size: int) -> None:
    buf = writable_buffer(size)
    view = memoryview(buf)
    assert view.nbytes == size
    assert not view.readonly
    assert isinstance(buf, bytearray) == (size < MAPPED_MIN)
    arr = np.frombuffer(buf, dtype=np.uint8)
    assert arr.flags.writeable
    assert not arr.any()
    if size:
        arr[-1] = 7
        assert view[-1] == 7


def test_a_view_keeps_the_mapping_alive() -> None:
    arr = np.frombuffer(writable_buffer(MAPPED_MIN), dtype=np.uint8)  # the only reference
    arr[:] = 3
    assert int(arr.sum()) == 3 * MAPPED_MIN


@pytest.mark.parametrize("size", [100, MAPPED_MIN + 3])
def test_local_read_owns_writable_memory(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    store = open_store(str(tmp_path / "state.bin"))
    store.write([data])
    first, info = store.read()
    second, _ = store.read()
    assert info.size == size
    assert bytes(first) == data
    arr = np.frombuffer(first, dtype=np.uint8)
    assert arr.flags.writeable
    arr[:] = 0
    assert bytes(second) == data  # another read does not share the memory
    assert (tmp_path / "state.bin").read_bytes() == data  # nor does the file


def test_zstd_decodes_a_large_section_into_writable_memory() -> None:
    data = np.arange(MAPPED_MIN // 8, dtype=np.int64).tobytes()
    out = zstd(3).decode(zstd(3).encode(data))
    assert not memoryview(out).readonly
    assert bytes(out) == data


@pytest.mark.parametrize("start", [0, 1, 0xFFFFFFFF])
def test_crc32_matches_zlib(start: int) -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 63, 4096, 1 << 20):
        payload = rng.integers(0, 256, n, dtype=np.uint8)
        for buf in (payload.tobytes(), memoryview(payload), bytearray(payload.tobytes())):
            assert crc32(buf, start) == zlib.crc32(buf, start)
    words = np.arange(1000, dtype=np.int64)
    assert crc32(memoryview(words)) == zlib.crc32(memoryview(words))


@pytest.mark.parametrize("size", [0, 100, 4096, 5 << 20])
def test_fresh_buffer_is_writable_owned_and_sized(size: int) -> None:
    # numpy is imported here: above 4 KiB the memory is numpy's (no zero fill); the caller
    # overwrites it all, so only size, writability and ownership are promised.
    buf = fresh_buffer(size)
    view = memoryview(buf)
    assert view.nbytes == size
    assert not view.readonly
    other = memoryview(fresh_buffer(size))
    if size:
        view[:] = b"\x01" * size
        other[:] = b"\x02" * size
        assert bytes(view) == b"\x01" * size
    arr = np.frombuffer(buf, dtype=np.uint8)
    assert arr.flags.writeable

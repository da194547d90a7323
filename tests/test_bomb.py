"""Decompression bombs: a load never allocates more than the stored sizes justify, nor more
than ``max_state_bytes`` (issue 10, item 8). Checked under an address-space limit, in a
subprocess, so an allocation of what the forged header claims fails the test loudly."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zstandard

from statevault import StateManager
from statevault.errors import SerializationError, StateTooLargeError
from statevault.frame import FrameReader, build_frame
from statevault.transforms import Transform, zstd

CLAIM = 4 * 2**30


def forged_zstd(claim: int = CLAIM, actual: int = 64) -> bytes:
    """A zstd frame whose header says ``claim`` bytes and whose one RLE block holds ``actual``."""
    descriptor = 0b1110_0000  # 8-byte content size, single segment, no checksum, no dict
    block = 1 | (1 << 1) | (actual << 3)  # last block, RLE, size
    return (
        b"\x28\xb5\x2f\xfd"
        + bytes([descriptor])
        + struct.pack("<Q", claim)
        + block.to_bytes(3, "little")
        + b"\x00"
    )


def forged_frame() -> bytes:
    fake = Transform("zstd", lambda d: forged_zstd(), lambda d: d, {"level": 3}, compresses=True)
    return b"".join(bytes(c) for c in build_frame([[b"x"]], transforms=[fake], generation=1))


def test_the_forged_frame_is_small_and_claims_4_gib() -> None:
    frame = forged_frame()
    assert len(frame) < 300
    assert zstandard.frame_content_size(forged_zstd()) == CLAIM


def test_a_claim_the_compressed_bytes_cannot_hold_is_refused_before_allocating() -> None:
    with pytest.raises(StateTooLargeError, match="more than zstd can expand"):
        FrameReader.from_bytes(forged_frame()).section(0)
    with pytest.raises(StateTooLargeError):
        zstd().decode(forged_zstd())


BOMB_CHILD = textwrap.dedent(
    """
    import resource, sys
    from statevault import StateManager, StateTooLargeError
    path = sys.argv[1]
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    # Room for the load itself, far below the 4 GiB the header claims.
    resource.setrlimit(resource.RLIMIT_AS, (vm + 512 * 2**20, resource.RLIM_INFINITY))
    try:
        StateManager(path, spool_dir=False).load()
    except StateTooLargeError as e:
        print("refused:", e)
    sm = StateManager(path, spool_dir=False, keep_versions=0)
    print("forgiving:", sm.load_state(), sm.last_load_source)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_loading_a_forged_frame_under_an_address_space_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.state"
    path.write_bytes(forged_frame())
    done = subprocess.run(
        [sys.executable, "-c", BOMB_CHILD, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: zstd data claims 4294967296 bytes"), lines
    assert lines[1] == "forgiving: {} failed"


def test_a_genuine_bomb_is_bounded_by_max_state_bytes(tmp_path: Path) -> None:
    path = tmp_path / "zeros.state"
    big = {"zeros": bytes(64 * 2**20)}
    StateManager(path).save(big)
    assert path.stat().st_size < 64 * 1024  # 64 MiB of zeros compress to a few KiB
    with pytest.raises(StateTooLargeError, match="max_state_bytes"):
        StateManager(path, max_state_bytes=16 * 2**20).load()
    assert StateManager(path).load() == big  # the default limit (4 GiB) reads it


def test_a_state_its_readers_would_refuse_is_not_saved(tmp_path: Path) -> None:
    sm = StateManager(tmp_path / "s.state", max_state_bytes=2**20)
    with pytest.raises(SerializationError, match="max_state_bytes"):
        sm.save({"blob": bytes(2 * 2**20)})
    assert not (tmp_path / "s.state").exists()
    sm.save({"blob": bytes(1000)})


def test_a_frame_larger_than_the_limit_is_refused_before_its_sections(tmp_path: Path) -> None:
    path = tmp_path / "s.state"
    StateManager(path, compression=None, delta=False).save({"blob": os.urandom(100_000)})
    with pytest.raises(StateTooLargeError, match="the frame is"):
        FrameReader.from_bytes(path.read_bytes(), max_bytes=50_000)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_state_bytes_must_be_a_positive_int(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_state_bytes"):
        StateManager(tmp_path / "s", max_state_bytes=bad)  # type: ignore[arg-type]

"""Manifest sections: layout 1 and its dictionary-compressed layout 2 decode to the same segments.

Property test: any list of sections (inline runs and buffer plans) encoded, compressed with
``compress_sections`` and decoded gives the segments and marks back exactly; forged layout-2
sections are typed errors, never other data or an unbounded allocation.
"""

from __future__ import annotations

import random
import struct

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.delta.manifest import (
    Inline,
    compress_sections,
    decode_section,
    encode_section,
)
from statevault.delta.planner import BufferPlan, Extent
from statevault.errors import CorruptStateError, UnsupportedFormatError

IDS = [bytes([i]) * 16 for i in range(8)]
NUMBER = {pid: i for i, pid in enumerate(IDS)}

extents = st.builds(Extent, st.sampled_from(IDS), st.integers(0, 1 << 20), st.integers(1, 1 << 20))
plans = st.lists(extents, min_size=1, max_size=5).map(
    lambda es: BufferPlan(tuple(es), sum(e.length for e in es))
)
inline = st.binary(min_size=1, max_size=600).map(Inline)
sections = st.lists(st.lists(st.one_of(inline, plans), max_size=8), min_size=1, max_size=8)


def _normal(segments: list[object]) -> list[object]:
    """Segments as comparable values (adjacent inline runs stay separate, as encoded)."""
    return [bytes(s.data) if isinstance(s, Inline) else s for s in segments]


def _decode_all(stored: list[bytes], marks: list[list[int]] | None = None) -> list[list[object]]:
    out = []
    for i, data in enumerate(stored):
        got: list[int] = []
        out.append(_normal(decode_section(data, lambda: IDS, got, stored.__getitem__)))
        if marks is not None:
            assert got == marks[i]
    return out


@settings(max_examples=60, deadline=None)
@given(sections, st.randoms(use_true_random=False))
def test_compressed_sections_decode_to_the_same_segments(
    secs: list[list[object]], rnd: object
) -> None:
    marks = [
        [rnd.getrandbits(64) for s in segs if isinstance(s, BufferPlan)]  # type: ignore[attr-defined]
        for segs in secs
    ]
    raw = [encode_section(segs, NUMBER, m) for segs, m in zip(secs, marks, strict=True)]  # type: ignore[arg-type]
    stored = compress_sections(raw)
    assert len(stored) == len(raw)
    assert _decode_all(stored, marks) == [_normal(s) for s in secs]
    assert _decode_all(raw) == [_normal(s) for s in secs]  # layout 1 still reads


def _pairs(n: int) -> list[bytes]:
    """Near copies, as a trading state's pair sections are."""
    out = []
    shared = random.Random(7).randbytes(1500)  # what every pair's document has in common
    for k in range(n):
        doc = shared + f'{{"name":"P{k}","shape":[{5000 + k}]}}'.encode()
        segs = [Inline(doc), BufferPlan((Extent(IDS[k % 8], 0, 40_000),), 40_000)]
        out.append(encode_section(segs, NUMBER, [k]))  # type: ignore[arg-type]
    return out


def test_near_copies_are_stored_against_a_dictionary_and_smaller() -> None:
    raw = _pairs(6)
    stored = compress_sections(raw)
    kinds = [s[:4] for s in stored]
    assert kinds.count(b"SVDS") == 1  # the dictionary stays layout 1
    assert kinds.count(b"SVDZ") == 5
    alone = sum(len(zstandard.compress(r)) for r in raw)
    assert sum(len(zstandard.compress(s)) for s in stored) < alone / 2


def test_two_sections_or_small_ones_stay_layout_1() -> None:
    assert compress_sections(_pairs(2)) == _pairs(2)
    tiny = [encode_section([Inline(b"x")], NUMBER) for _ in range(5)]
    assert compress_sections(tiny) == tiny


def _packed() -> tuple[list[bytes], int]:
    stored = compress_sections(_pairs(4))
    i = next(k for k, s in enumerate(stored) if s[:4] == b"SVDZ")
    return stored, i


def _forge(body: bytes, *, version: int = 1, base: int, size: int) -> bytes:
    return struct.pack("<4sB3xII", b"SVDZ", version, base, size) + body


def test_forged_layout_2_sections_are_corrupt_not_other_data() -> None:
    stored, i = _packed()
    good = stored[i]
    _, _, base, size = struct.unpack_from("<4sB3xII", good)
    body = good[16:]
    cases = {
        "no dictionary given": (good, None),
        "a base that does not exist": (_forge(body, base=99, size=size), stored.__getitem__),
        "a base that is itself layout 2": (_forge(body, base=i, size=size), stored.__getitem__),
        "a size other than the frame's": (_forge(body, base=base, size=size + 1), None),
        "a size beyond the bound": (_forge(body, base=base, size=(1 << 32) - 1), None),
        "a damaged zstd frame": (
            _forge(b"\x28\xb5\x2f\xfd" + b"\0" * 9, base=base, size=size),
            None,
        ),
        "a short header": (b"SVDZ\x01", stored.__getitem__),
    }
    for what, (data, bases) in cases.items():
        lookup = bases if bases is not None or what == "no dictionary given" else stored.__getitem__
        with pytest.raises(CorruptStateError, match="malformed"):
            decode_section(data, lambda: IDS, None, lookup)


def test_a_newer_packing_version_says_upgrade() -> None:
    stored, i = _packed()
    _, _, base, size = struct.unpack_from("<4sB3xII", stored[i])
    newer = _forge(stored[i][16:], version=2, base=base, size=size)
    with pytest.raises(UnsupportedFormatError, match="upgrade"):
        decode_section(newer, lambda: IDS, None, stored.__getitem__)

"""Delta loads (issue 16): pack damage of every kind is a ``PackError`` naming the pack, and
loaded arrays are built zero-copy in memory the state owns, writable and independent.

Real files on disk throughout; damage is made by editing a pack file, or by a writer whose own
compression or encryption produced bad bytes (a registered transform, a patched encrypt).
"""

from __future__ import annotations

import importlib
import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault import StateError, StateManager, TradingStateManager, generate_key
from statevault.codec import Codec
from statevault.delta.reader import PACKS, DeltaReader, PackError
from statevault.errors import CorruptStateError, TruncatedStateError
from statevault.storage.local import LocalStore
from statevault.transforms import Buffer, Transform
from statevault.transforms.zstd import zstd

KEY = generate_key()
fernet_module = importlib.import_module("statevault.transforms.fernet")


def packs_of(path: Path) -> list[Path]:
    side = path.with_name(path.name + PACKS)
    return sorted(p for p in side.iterdir() if not p.name.startswith(".")) if side.exists() else []


def pair_state(pairs: int = 3, bars: int = 6_000) -> dict[str, Any]:
    index = pd.date_range("2024-01-01", periods=bars, freq="min", tz="UTC")
    return {
        "pairs": {
            f"A{i}-B{i}": {"price": pd.Series(np.arange(bars, dtype=float) * (i + 1), index)}
            for i in range(pairs)
        },
        "cash": 1.0,
    }


def save_trading(path: Path, **options: Any) -> None:
    state = pair_state()
    TradingStateManager(path, spool_dir=False, **options).save_trading(
        {}, state["pairs"], {"cash": 1.0}
    )


def assert_pack_error(path: Path, pack: Path, **options: Any) -> None:
    """A full load, a lazy pair load and a verify all say which pack and what to do."""
    loads = [
        lambda: StateManager(path, spool_dir=False, **options).load(),
        lambda: TradingStateManager(path, spool_dir=False, **options).load_pair_state("A1-B1"),
    ]
    for load in loads:
        with pytest.raises(PackError) as info:
            load()
        assert isinstance(info.value, StateError)
        message = str(info.value)
        assert pack.name in message, message
        assert "restore" in message, message
    # The retained version of the same save needs the same pack: a fallback cannot hide it.
    with pytest.raises(StateError):
        StateManager(path, spool_dir=False, **options).load(fallback=True)


OPTIONS: list[dict[str, Any]] = [
    {"compression": None},
    {"compression": "zstd"},
    {"compression": "zstd", "encryption_key": KEY},
]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "zstd", "fernet"])
def test_a_truncated_pack_is_a_pack_error(tmp_path: Path, options: dict[str, Any]) -> None:
    path = tmp_path / "t.sv"
    save_trading(path, **options)
    (pack,) = packs_of(path)
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) * 2 // 3])
    assert_pack_error(path, pack, **options)


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "zstd", "fernet"])
def test_a_flipped_byte_in_a_piece_is_a_pack_error(tmp_path: Path, options: dict[str, Any]) -> None:
    path = tmp_path / "t.sv"
    save_trading(path, **options)
    (pack,) = packs_of(path)
    data = bytearray(pack.read_bytes())
    for at in range(len(data) - 1, len(data) // 8, -997):  # every piece, not the header
        data[at] ^= 0x10  # the piece's checksum no longer matches
    pack.write_bytes(bytes(data))
    assert_pack_error(path, pack, **options)


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "zstd", "fernet"])
def test_a_shifted_range_is_a_pack_error(tmp_path: Path, options: dict[str, Any]) -> None:
    """Bytes cut out of the middle and zeros added at the end: the same size, the header
    intact, every section after the cut read from the wrong range."""
    path = tmp_path / "t.sv"
    save_trading(path, **options)
    (pack,) = packs_of(path)
    data = pack.read_bytes()
    cut = len(data) // 2
    pack.write_bytes(data[:cut] + data[cut + 64 :] + bytes(64))
    assert_pack_error(path, pack, **options)


def _corrupting_zstd(params: Any, keyring: Any) -> Transform:
    """A writer's broken compressor: valid zstd for small inputs, a damaged frame for the
    pieces (the manifest stays readable, so the damage is met in the pack)."""
    real = zstd(3)

    def encode(data: Buffer) -> Buffer:
        out = bytearray(real.encode(data))
        if memoryview(data).nbytes > 4096:
            out[len(out) // 2 :] = bytes(len(out) - len(out) // 2)
        return out

    return Transform("zstd", encode, real.decode, {"level": 3}, compresses=True)


_corrupting_zstd.compresses = True  # type: ignore[attr-defined]


def test_bad_compression_in_a_pack_is_a_pack_error(tmp_path: Path) -> None:
    path = tmp_path / "t.sv"
    writer = TradingStateManager(path, spool_dir=False, compression="zstd")
    writer.register_transform("zstd", _corrupting_zstd)
    state = pair_state()
    writer.save_trading({}, state["pairs"], {"cash": 1.0})
    (pack,) = packs_of(path)
    assert_pack_error(path, pack, compression="zstd")


def test_a_bad_mac_in_a_pack_is_a_pack_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.sv"
    real = fernet_module.encrypt_token

    def bad_mac(keyring: Any, data: Buffer) -> bytearray:
        out = real(keyring, data)
        if memoryview(data).nbytes > 4096:  # a piece: its MAC is wrong, its CRC is not
            out[-1] ^= 1
        return out

    monkeypatch.setattr(fernet_module, "encrypt_token", bad_mac)
    save_trading(path, compression=None, encryption_key=KEY)
    monkeypatch.undo()
    (pack,) = packs_of(path)
    assert_pack_error(path, pack, compression=None, encryption_key=KEY)


def test_a_piece_recorded_at_a_wrong_section_is_a_pack_error(tmp_path: Path) -> None:
    """An index whose piece locations do not match the pack (two pieces swapped)."""
    path = tmp_path / "t.sv"
    sm = StateManager(path, spool_dir=False, compression=None)
    sm.save({"a": np.arange(10_000.0), "b": np.arange(20_000.0)})
    reader, _ = sm.layers.frames.ranged_reader()
    assert isinstance(reader, DeltaReader)
    index = reader.index()
    a, b = list(index.pieces)[:2]
    index.pieces[a], index.pieces[b] = index.pieces[b], index.pieces[a]
    (pack,) = packs_of(path)

    def read_all() -> None:
        for i in range(len(reader.header.sections)):
            reader.section_parts(i)

    with pytest.raises(PackError, match=pack.name):
        read_all()


# ------------------------------------------------------------------ owned, independent arrays


def rich_state() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    big = rng.normal(size=20_000)

    def index() -> pd.DatetimeIndex:  # one per object: shared objects stay shared on a load
        return pd.date_range("2024-01-01", periods=8_000, freq="min", tz="UTC")

    return {
        "big": big,
        "same": big.copy(),  # the same bytes: one deduplicated piece, two arrays
        "ints": np.arange(30_000, dtype=np.int64).reshape(100, 300),
        "fortran": np.asfortranarray(rng.normal(size=(200, 40))),
        "small": np.arange(10.0),  # below the delta threshold: inline in the manifest
        "series": pd.Series(rng.normal(size=8_000), index=index()),
        "frame": pd.DataFrame(rng.normal(size=(8_000, 3)), index=index(), columns=["x", "y", "z"]),
        "mixed": pd.DataFrame(
            {"i": np.arange(8_000), "f": np.linspace(0, 1, 8_000)}, index=index()
        ),
    }


def numpy_arrays(state: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """Every numpy array a loaded state exposes (pandas values and index data included)."""
    out: list[tuple[str, np.ndarray]] = []
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            out.append((name, value))
        elif isinstance(value, pd.Series):
            out.append((f"{name}.values", value.to_numpy(copy=False)))
            out.append((f"{name}.index", value.index.asi8))
        elif isinstance(value, pd.DataFrame):
            for col in value.columns:
                out.append((f"{name}[{col}]", value[col].to_numpy(copy=False)))
            out.append((f"{name}.index", value.index.asi8))
    return out


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "zstd", "fernet"])
@pytest.mark.parametrize("delta", [True, False], ids=["delta", "full"])
def test_every_loaded_array_is_writeable_and_independent(
    tmp_path: Path, options: dict[str, Any], delta: bool
) -> None:
    path = tmp_path / "s.sv"
    state = rich_state()
    StateManager(path, spool_dir=False, delta=delta, **options).save(state)
    loaded = StateManager(path, spool_dir=False, **options).load()
    arrays = numpy_arrays(loaded)
    assert len(arrays) >= 14
    for (name_a, a), (name_b, b) in itertools.combinations(arrays, 2):
        if name_a.split("[")[0].split(".")[0] != name_b.split("[")[0].split(".")[0]:
            assert not np.shares_memory(a, b), (name_a, name_b)
    for k, (name, loaded_array) in enumerate(arrays):
        arr = loaded_array
        if not arr.flags.writeable:
            # pandas hands out read-only views of a column under copy-on-write (pandas 3);
            # the data underneath must still be writable memory, never a shared bytes.
            arr = arr.view()
            arr.flags.writeable = True  # raises ValueError if the memory is read-only
        before = [x.tobytes(order="A") for _, x in arrays]  # bytes: NaN-safe
        bits = arr.view(f"u{arr.itemsize}")  # same item size: works on strided columns too
        np.invert(bits, out=bits)
        for j, (other, x) in enumerate(arrays):
            if j != k and not np.shares_memory(x, arr):
                assert x.tobytes(order="A") == before[j], f"mutating {name} changed {other}"
    # The stored state is untouched: a fresh load gives the saved values.
    again = StateManager(path, spool_dir=False, **options).load()
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(again[name], value), name
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(again[name], value)
        else:
            pd.testing.assert_frame_equal(again[name], value)


def test_a_lazy_pair_load_is_independent_of_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "t.sv"
    save_trading(path)
    tsm = TradingStateManager(path, spool_dir=False)
    one = tsm.load_pair_state("A1-B1")["price"]
    two = tsm.load_pair_state("A1-B1")["price"]
    values = one.to_numpy(copy=False).view()
    assert not np.shares_memory(values, two.to_numpy(copy=False))
    values.flags.writeable = True
    values[:] = -1.0
    assert np.array_equal(two.to_numpy(), np.arange(6_000, dtype=float) * 2)
    assert np.array_equal(tsm.load_pair_state("A1-B1")["price"].to_numpy(), two.to_numpy())


# ------------------------------------------------------------------ zero copy, by construction


def test_local_read_range_owned_is_fresh_writable_memory(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path / "f"))
    store.write([b"0123456789"])
    one = store.read_range_owned(2, 8)
    two = store.read_range_owned(2, 8)
    assert bytes(one) == b"234567"
    view = memoryview(one)
    assert not view.readonly
    view[0] = ord("x")
    assert bytes(two) == b"234567"
    assert bytes(store.read_range_owned(8, 100)) == b"89"  # clipped to the object's size
    assert bytes(store.read_range_owned(20, 30)) == b""


def test_the_default_read_range_owned_copies_read_range_once() -> None:
    from statevault.storage.memory import MemoryStore

    store = MemoryStore("memory://zero-copy-test/a")
    try:
        store.write([b"abcdef"])
        got = store.read_range_owned(1, 4)
        assert bytes(got) == b"bcd"
        assert not memoryview(got).readonly
    finally:
        store.delete()


def test_a_buffer_inside_one_writable_part_is_a_view_of_it() -> None:
    codec = Codec()
    arr = np.arange(5_000, dtype=np.float64)
    chunks = [bytes(memoryview(c).cast("B")) for c in codec.dumps({"a": arr})]
    head, *rest = chunks
    body = bytearray(b"".join(rest))
    value = codec.loads_parts([head, memoryview(body)])
    assert np.array_equal(value["a"], arr)
    assert np.shares_memory(value["a"], np.frombuffer(body, dtype=np.uint8))
    # Read-only parts (a manifest's inline bytes) are copied: the result owns its memory.
    ro = codec.loads_parts([head, memoryview(bytes(body))])
    assert ro["a"].flags.writeable
    assert ro["a"].flags.owndata or ro["a"].base is not None


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    cut_off=st.one_of(st.none(), st.integers(0, 10_000)),
    ro=st.booleans(),
)
def test_loads_parts_is_loads_of_the_joined_parts(
    cuts: list[int], cut_off: int | None, ro: bool
) -> None:
    """Any split of a payload (inside the header, the document, a buffer) loads alike, and a
    truncated payload fails alike: the same typed error, never struct.error or ValueError."""
    codec = Codec()
    value = {"a": np.arange(700, dtype=np.int32), "s": "x" * 300, "b": np.ones((20, 9))}
    payload = b"".join(bytes(memoryview(c).cast("B")) for c in codec.dumps(value))
    if cut_off is not None:
        payload = payload[: cut_off % (len(payload) + 1)]
    points = sorted({c % (len(payload) + 1) for c in cuts})
    parts: list[Buffer] = []
    prev = 0
    for p in [*points, len(payload)]:
        piece = payload[prev:p]
        parts.append(memoryview(piece) if ro else memoryview(bytearray(piece)))
        prev = p
    try:
        expected = codec.loads(payload)
    except (CorruptStateError, TruncatedStateError) as e:
        failure: type[StateError] | None = type(e)
    else:
        failure = None
    if failure is not None:
        with pytest.raises(failure):
            codec.loads_parts(parts)
        return
    got = codec.loads_parts(parts)
    assert got.keys() == expected.keys()
    assert got["s"] == value["s"]
    for k in ("a", "b"):
        assert np.array_equal(got[k], value[k])
        assert got[k].flags.writeable


def test_a_plain_delta_load_reads_each_piece_into_the_arrays_memory_once(tmp_path: Path) -> None:
    """Arrays of one piece each are built on the span read from the pack: the load's traced
    peak is about the arrays themselves (it was twice that: a bytes copy of every span, then
    a bytearray copy of every section). Guards the path end to end, through the manager's
    counting store layer (which must pass ``read_range_owned`` on, not fall back to a copy)."""
    import tracemalloc

    rng = np.random.default_rng(2)
    state = {f"a{i}": rng.normal(size=1_500) for i in range(200)}  # 12 KB: one piece each
    raw = sum(a.nbytes for a in state.values())
    path = tmp_path / "s.sv"
    StateManager(path, spool_dir=False, compression=None).save(state)
    sm = StateManager(path, spool_dir=False, compression=None)
    sm.load()  # imports and caches warmed outside the traced run
    tracemalloc.start()
    try:
        loaded = sm.load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(np.array_equal(loaded[k], v) for k, v in state.items())
    assert peak < 1.4 * raw, (peak, raw)


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "zstd", "fernet"])
def test_a_piece_many_arrays_use_is_checked_and_decoded_once(
    tmp_path: Path, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Equal buffers (one index under many Series) share pieces: a full load reads each
    piece of a pack once (checksum, zstd, Fernet), however many extents name it."""
    from statevault.frame import FrameReader

    base = np.random.default_rng(3).normal(size=20_000)
    state = {f"a{i}": base.copy() for i in range(6)}
    path = tmp_path / "s.sv"
    StateManager(path, spool_dir=False, **options).save(state)
    reads: Counter[tuple[int, int]] = Counter()
    real = FrameReader.section

    def counting(self: FrameReader, index: int) -> Buffer:
        reads[id(self), index] += 1
        return real(self, index)

    monkeypatch.setattr(FrameReader, "section", counting)
    loaded = StateManager(path, spool_dir=False, **options).load()
    for k in state:
        assert np.array_equal(loaded[k], base)
        assert loaded[k].flags.writeable
    for a, b in itertools.combinations(loaded.values(), 2):
        assert not np.shares_memory(a, b)
    assert len(reads) > 3  # the HEAD's two sections and the pieces
    assert set(reads.values()) == {1}, reads


@pytest.mark.parametrize("arena", [2 << 20, 20_000, 1], ids=["one", "several", "each"])
def test_buffers_over_several_parts_get_aligned_slices_of_their_own(
    arena: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from statevault.codec import _payload
    from statevault.codec._payload import unpack_parts

    monkeypatch.setattr(_payload, "ARENA_MAX", arena)  # shared allocations, or one each
    codec = Codec()
    rng = np.random.default_rng(4)
    value = {f"a{i}": rng.normal(size=1_000 + 7 * i) for i in range(5)}
    joined = b"".join(bytes(memoryview(c).cast("B")) for c in codec.dumps(value))
    cuts = [*range(0, len(joined), 997), len(joined)]  # every buffer spans parts
    parts = [memoryview(bytearray(joined[a:b])) for a, b in itertools.pairwise(cuts)]
    _, buffers = unpack_parts(parts)
    arrays = [np.frombuffer(b, dtype=np.float64) for b in buffers]
    assert [a.tobytes() for a in arrays] == [v.tobytes() for v in value.values()]
    for a, b in itertools.combinations(arrays, 2):
        assert not np.shares_memory(a, b)
    for a in arrays:
        assert a.flags.writeable
        assert a.flags.aligned
        assert a.ctypes.data % 16 == 0  # 64-byte steps from the base
    got = codec.loads_parts(parts)
    for k, v in value.items():
        assert np.array_equal(got[k], v)

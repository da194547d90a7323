"""The delta planner: plans reassemble to the exact bytes, and saves cost what changed.

Property tests drive any sequence of appends, drops, rolls, edits, inserts, deletes, random
buffers and reloads (a fresh planner whose ``previous`` comes from stored extents only) through a
planner with small chunk sizes; workload tests assert the bytes of new pieces with the defaults.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from statevault.delta.planner import ID_SIZE, BufferPlan, Extent, Planner

KEY = b"k" * 32
ROW = 8  # float64


def step(
    planner: Planner,
    data: bytes | bytearray,
    previous: BufferPlan | None,
    store: dict[bytes, bytes],
) -> tuple[BufferPlan, int]:
    """Plan ``data``, check every promise of the interface, store the new pieces."""
    plan, new = planner.plan(data, previous)
    known = {e.piece for e in previous.extents} if previous is not None else set()
    ids = [pid for pid, _ in new]
    assert len(ids) == len(set(ids))
    for pid, body in new:
        assert len(pid) == ID_SIZE
        assert planner.piece_id(body) == pid  # ids match the bytes
        assert pid not in known  # only what previous does not name is new
        store[pid] = bytes(body)
    first_use: list[bytes] = []
    for e in plan.extents:
        assert e.piece in known or e.piece in ids
        assert e.length > 0
        assert e.offset >= 0
        assert e.offset + e.length <= len(store[e.piece])
        if e.piece in ids and e.piece not in first_use:
            first_use.append(e.piece)
    assert first_use == ids  # in the order of first use, none unused
    assert plan.size == len(data) == sum(e.length for e in plan.extents)
    assert assemble(plan, store) == bytes(data)
    return plan, sum(len(body) for _, body in new)


def assemble(plan: BufferPlan, store: dict[bytes, bytes]) -> bytes:
    return b"".join(store[e.piece][e.offset : e.offset + e.length] for e in plan.extents)


def reloaded(plan: BufferPlan) -> BufferPlan:
    """The plan as a manager rebuilds it from a manifest: extents only, new objects."""
    return BufferPlan(tuple(Extent(e.piece, e.offset, e.length) for e in plan.extents), plan.size)


def quotes(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(1.085 * np.exp(np.cumsum(rng.normal(0.0, 1.5e-4, rows))), 5)


# -- properties ---------------------------------------------------------------------------

SMALL = {"min_size": 64, "avg_size": 256, "max_size": 1024, "tail_limit": 4, "head_size": 64}
OPS = ["append", "drop", "roll", "edit", "insert", "delete", "truncate", "random", "same"]


SEQUENCES = st.lists(
    st.tuples(st.sampled_from([*OPS, "reload"]), st.integers(0, 3000), st.integers(1, 600)),
    min_size=1,
    max_size=25,
)
ALPHABETS = st.sampled_from([2, 4, 256])  # few symbols: fingerprints collide everywhere


def run_sequence(seed: int, alphabet: int, ops: list[tuple[str, int, int]], buffers: int) -> None:
    """Apply ``ops`` to ``buffers`` buffers planned by one planner (hints are shared)."""
    rng = random.Random(seed)
    options = {**SMALL, "hint_limit": rng.choice([1, 3, 1 << 16])}  # 1, 3: hints forgotten
    table = bytes(b % alphabet for b in range(256))

    def fresh(k: int) -> bytes:
        return rng.randbytes(k).translate(table)

    store: dict[bytes, bytes] = {}
    planner = Planner(KEY, **options)
    first = bytearray(fresh(rng.randrange(0, 3000)))
    datas = [bytearray(first) for _ in range(buffers)]  # equal at first: pieces shared
    plans = [step(planner, data, None, store)[0] for data in datas]
    for op, where, k in ops:
        data = datas[rng.randrange(buffers)]
        at = where % (len(data) + 1)
        if op == "append":
            data += fresh(k)
        elif op == "drop":
            del data[:k]
        elif op == "roll":
            data[:] = data[k:] + fresh(k)
        elif op == "edit" and data:
            data[at % len(data)] ^= 1 + rng.randrange(255)
        elif op == "insert":
            data[at:at] = fresh(k)
        elif op == "delete":
            del data[at : at + k]
        elif op == "truncate":
            del data[at:]
        elif op == "random":
            data[:] = fresh(k * 5)
        elif op == "reload":  # a new manager: same key, previous from stored extents only
            planner = Planner(KEY, **options)
            plans = [reloaded(plan) for plan in plans]
        for i in range(buffers):
            plans[i], written = step(planner, datas[i], plans[i], store)
            if op == "same":
                assert written <= SMALL["max_size"]
            bound = len(datas[i]) // SMALL["min_size"] + SMALL["tail_limit"] + 4
            assert len(plans[i].extents) <= bound


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), alphabet=ALPHABETS, ops=SEQUENCES)
def test_any_sequence_reassembles_exactly(
    seed: int, alphabet: int, ops: list[tuple[str, int, int]]
) -> None:
    run_sequence(seed, alphabet, ops, buffers=1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), alphabet=ALPHABETS, ops=SEQUENCES)
def test_buffers_sharing_pieces_and_hints(
    seed: int, alphabet: int, ops: list[tuple[str, int, int]]
) -> None:
    run_sequence(seed, alphabet, ops, buffers=3)


@pytest.mark.slow
@settings(max_examples=1_500, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), alphabet=ALPHABETS, ops=SEQUENCES)
def test_any_sequence_reassembles_exactly_long(
    seed: int, alphabet: int, ops: list[tuple[str, int, int]]
) -> None:
    run_sequence(seed, alphabet, ops, buffers=2)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 5000))
def test_identical_buffer_writes_nothing(seed: int, size: int) -> None:
    data = random.Random(seed).randbytes(size)
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY, **SMALL)
    plan, _ = step(planner, data, None, store)
    again, written = step(planner, data, plan, store)
    assert written == 0
    assert again == plan


def test_a_fingerprint_match_is_not_trusted() -> None:
    """Same first bytes at a plausible shift, different bytes after: rewritten, not reused."""
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    old = quotes(5_000).tobytes()
    plan, _ = step(planner, old, None, store)
    forged = bytearray(old[ROW:] + b"\0" * ROW)
    forged[20_000] ^= 0xFF  # the head hint still matches; the keyed hash does not
    plan, written = step(planner, forged, plan, store)
    assert assemble(plan, store) == bytes(forged)
    assert written > 0


# -- workloads (default sizes) --------------------------------------------------------------


def test_append_one_row_writes_the_row() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(5_001)
    plan, _ = step(planner, values[:5_000].tobytes(), None, store)
    plan, written = step(planner, values.tobytes(), plan, store)
    assert written == ROW


def test_appends_cost_about_the_rows() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(6_000)
    plan, _ = step(planner, values[:5_000].tobytes(), None, store)
    total = 0
    for rows in range(5_001, 6_001):
        plan, written = step(planner, values[:rows].tobytes(), plan, store)
        total += written
    # binary-counter merges: each byte rewritten about log2(open / row) times, plus seals
    # (a rewrite of the 40 KB buffer per tick would be 40 MB)
    assert total <= 1_000 * ROW * 16 + 256 * 1024


def test_rolling_window_references_old_pieces_with_an_offset() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(5_200)
    plan, _ = step(planner, values[:5_000].tobytes(), None, store)
    first = plan.extents[0]
    total = 0
    for t in range(1, 201):
        plan, written = step(planner, values[t : 5_000 + t].tobytes(), plan, store)
        total += written
        assert plan.extents[0].piece == first.piece
        assert plan.extents[0].offset == t * ROW
    assert total <= 200 * ROW * 16


def test_middle_edit_rewrites_at_most_a_chunk() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(50_000)
    plan, _ = step(planner, values.tobytes(), None, store)
    edited = values.copy()
    edited[25_000] += 1e-5
    plan, written = step(planner, edited.tobytes(), plan, store)
    assert 0 < written <= 256 * 1024  # max_size
    inserted = np.insert(edited, 30_000, [1.0, 2.0, 3.0])
    plan, written = step(planner, inserted.tobytes(), plan, store)
    assert 0 < written <= 256 * 1024 + 3 * ROW


@pytest.mark.parametrize("workload", ["append", "roll", "edit"])
def test_fresh_planner_after_load_rewrites_a_bounded_region(workload: str) -> None:
    """No hints (previous rebuilt from stored extents): bounded rewrite, then O(change)."""
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(50_100, seed=1)
    plan, _ = step(planner, values[:50_000].tobytes(), None, store)
    for t in range(1, 51):  # some history: open-chunk pieces and, for roll, an offset
        window = values[t : 50_000 + t] if workload == "roll" else values[: 50_000 + t]
        plan, _ = step(planner, window.tobytes(), plan, store)

    def tick(t: int) -> bytes:
        if workload == "roll":
            return values[t : 50_000 + t].tobytes()
        if workload == "append":
            return values[: 50_000 + t].tobytes()
        edited = values[:50_050].copy()
        edited[10_000 + t] += 1e-5
        return edited.tobytes()

    loaded = Planner(KEY)
    plan, written = step(loaded, tick(51), reloaded(plan), store)
    assert written <= 3 * 256 * 1024  # the first and the open chunk, at most
    assert written < 400_000 // 2
    plan, written = step(loaded, tick(52), plan, store)
    assert written <= (256 * 1024 if workload == "edit" else 2_048)


@pytest.mark.slow
def test_fragmentation_is_bounded_over_10000_appends() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    values = quotes(15_000)
    plan, _ = step(planner, values[:5_000].tobytes(), None, store)
    worst = 0
    for rows in range(5_001, 15_001):
        plan, new = planner.plan(values[:rows].tobytes(), plan)
        store.update((pid, bytes(body)) for pid, body in new)
        worst = max(worst, len(plan.extents))
    assert worst <= 15_000 * ROW // (16 * 1024) + 16 + 4
    assert assemble(plan, store) == values.tobytes()


@pytest.mark.parametrize("appends", [1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_fragmentation_rule_holds_with_small_chunks(appends: int) -> None:
    """Appends through many seals: the open chunk stays within tail_limit + 1 extents."""
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY, min_size=256, avg_size=512, max_size=2048, tail_limit=8)
    values = quotes(500 + appends)
    plan, _ = step(planner, values[:500].tobytes(), None, store)
    for rows in range(501, 501 + appends):
        plan, new = planner.plan(values[:rows].tobytes(), plan)
        store.update((pid, bytes(body)) for pid, body in new)
        small = 0
        for e in reversed(plan.extents):
            if e.length >= 256:
                break
            small += 1
        assert small <= 8 + 1
        assert len(plan.extents) <= rows * ROW // 256 + 8 + 4
    assert assemble(plan, store) == values.tobytes()


# -- ids ----------------------------------------------------------------------------------


def test_piece_ids_are_keyed() -> None:
    data = quotes(1_000).tobytes()
    a, b = Planner(KEY), Planner(b"another key")
    derived = blake3(KEY, derive_key_context="statevault 2026-12 delta piece ids").digest()
    assert a.piece_id(data) == blake3(data, key=derived).digest(ID_SIZE)
    assert a.piece_id(data) != b.piece_id(data)
    plan_a, _ = a.plan(data, None)
    plan_b, _ = b.plan(data, None)
    assert plan_a == Planner(KEY).plan(data, None)[0]  # same key, same plan
    assert {e.piece for e in plan_a.extents}.isdisjoint(e.piece for e in plan_b.extents)
    assert Planner(b"x" * 100).piece_id(data) != a.piece_id(data)  # any key length


def test_empty_and_tiny_buffers() -> None:
    store: dict[bytes, bytes] = {}
    planner = Planner(KEY)
    plan, written = step(planner, b"", None, store)
    assert plan == BufferPlan((), 0)
    assert written == 0
    plan, written = step(planner, b"x" * 40, plan, store)
    assert len(plan.extents) == 1
    assert written == 40
    plan, written = step(planner, b"x" * 40, plan, store)
    assert written == 0


@pytest.mark.parametrize(
    "options",
    [
        {"min_size": 32},
        {"min_size": 4096, "avg_size": 1024},
        {"min_size": 64, "avg_size": 128},
        {"max_size": 1 << 25},
        {"tail_limit": 0},
        {"head_size": 8},
        {"hint_limit": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must satisfy|>="):
        Planner(KEY, **options)


def test_the_bench_completes(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import delta_planner

    assert delta_planner.main(["--size", "S", "--ticks", "5"]) == 0
    out = capsys.readouterr().out
    for workload in delta_planner.WORKLOADS:
        assert f"quotes  {workload}" in out
    assert "state S append" in out


def test_equal_buffers_share_one_plan_and_a_change_in_place_is_never_reused() -> None:
    planner = Planner(KEY, min_size=1024, avg_size=2048, max_size=8192)
    store: dict[bytes, bytes] = {}
    rng = np.random.default_rng(5)
    a = rng.random(4000)
    previous, _ = step(planner, a.tobytes(), None, store)
    grown = np.append(a, rng.random(3))
    first, _ = step(planner, memoryview(grown).cast("B"), previous, store)
    # an equal buffer (another object) against the same previous plan: the same plan, and
    # the new pieces are views of ITS bytes
    twin = grown.copy()
    plan, new = planner.plan(memoryview(twin).cast("B"), previous)
    assert plan == first
    assert new
    for _, body in new:
        assert memoryview(body).obj is twin  # not the bytes of the first buffer
    step(planner, memoryview(twin).cast("B"), previous, store)
    # the same object changed in place at its start, middle and end: planned afresh, exact
    for at in (0, len(twin) // 2, len(twin) - 1):
        twin[at] += 1.0
        changed, _ = step(planner, memoryview(twin).cast("B"), previous, store)
        assert changed != first
        twin[at] -= 1.0
        again, _ = step(planner, memoryview(twin).cast("B"), previous, store)
        assert again == first  # restored bytes: the remembered plan is right again


def test_a_remembered_plan_is_only_for_the_same_previous_plan() -> None:
    planner = Planner(KEY, min_size=1024, avg_size=2048, max_size=8192)
    store: dict[bytes, bytes] = {}
    data = np.random.default_rng(6).random(3000).tobytes()
    fresh, _ = step(planner, data, None, store)
    other, _ = step(planner, data[:8000], None, store)
    # against another previous plan the pieces it returns must be new to THAT plan
    step(planner, data, other, store)
    step(planner, data, fresh, store)


# -- the planner's memory ----------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ops=SEQUENCES)
def test_retain_forgets_nothing_a_live_plan_needs(
    seed: int, ops: list[tuple[str, int, int]]
) -> None:
    """A planner pruned after every save (``retain`` of the live plans) plans exactly as one
    that never forgets: what it drops is what no plan it may plan against can use."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("statevault.delta.planner._RETAIN_SLACK", 0)  # prune at every chance
        _retain_sequence(seed, ops)


def _retain_sequence(seed: int, ops: list[tuple[str, int, int]]) -> None:
    rng = random.Random(seed)
    pruned, kept = Planner(KEY, **SMALL), Planner(KEY, **SMALL)
    datas = [bytearray(rng.randbytes(rng.randrange(0, 3000))) for _ in range(3)]
    store: dict[bytes, bytes] = {}
    plans_p = [step(pruned, d, None, store)[0] for d in datas]
    plans_k = [step(kept, d, None, store)[0] for d in datas]
    for op, where, k in ops:
        data = datas[where % 3]
        if op in ("append", "same", "reload"):
            data += rng.randbytes(k)
        elif op in ("roll", "drop"):
            data[:] = data[k:] + rng.randbytes(k)
        elif data:
            data[where % len(data)] ^= 1
        previous = list(plans_p)
        plans_p = [step(pruned, d, p, store)[0] for d, p in zip(datas, plans_p, strict=True)]
        plans_k = [step(kept, d, p, store)[0] for d, p in zip(datas, plans_k, strict=True)]
        assert plans_p == plans_k
        pruned.retain([*plans_p, *previous])


def test_memory_stays_bounded_over_many_appends() -> None:
    """Hints and remembered plans stay proportional to the live plans, not to the saves made
    (a long-running bot's heap: every full cyclic collection walks them)."""
    planner = Planner(KEY)
    datas = [bytearray(quotes(5000, seed=i).tobytes()) for i in range(20)]
    plans: list[BufferPlan | None] = [None] * len(datas)
    sizes = []
    for tick in range(400):
        for i, data in enumerate(datas):
            data.extend(np.float64(tick).tobytes())
            plans[i] = planner.plan(data, plans[i])[0]
        live = [p for p in plans if p is not None]
        planner.retain(live)
        extents = sum(len(p.extents) for p in live)
        sizes.append(len(planner._hints) + len(planner._same))
        assert len(planner._hints) <= 2 * extents + 2048  # the slack, then twice what lives
    assert max(sizes[200:]) <= 2 * max(sizes[:200]) + 1024  # no growth with the save count

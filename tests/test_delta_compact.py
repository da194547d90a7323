"""Which packs a delta save merges (``statevault.delta.compact.merge_set``): the policy alone.

The end-to-end effect (bytes per tick, storage after 1,000 ticks) is measured in bench/
(``bench.delta_ticks``, ``bench.delta_long``); these tests pin the rule itself.
"""

from __future__ import annotations

from statevault.delta.compact import merge_set
from statevault.delta.manifest import Index, PackRef, PieceLoc
from statevault.delta.planner import BufferPlan, Extent


def _index(packs: dict[bytes, tuple[int, list[int]]]) -> tuple[Index, list[BufferPlan]]:
    """An index of ``packs`` (name -> (raw bytes, live piece lengths)) and the plans that
    reference exactly those live pieces (one buffer per pack)."""
    index = Index(b"s" * 16)
    plans = []
    for name, (raw, live) in packs.items():
        index.packs[name] = PackRef(name, b"d" * 16, raw + 100, 100, raw)
        extents = []
        for k, n in enumerate(live):
            pid = name[:8] + k.to_bytes(8, "little")
            index.pieces[pid] = PieceLoc(name, k, n)
            extents.append(Extent(pid, 0, n))
        plans.append(BufferPlan(tuple(extents), sum(live)))
    return index, plans


BASE = b"B" * 16
SMALL = b"S" * 16


def test_a_small_fragmented_pack_is_left_until_its_dead_bytes_matter() -> None:
    # The last tick's pack: 30 KB, a third live (the open tails), 20 KB dead. Against a 2.4 MB
    # state with max_packs 12 the floor is 100 KB: copying the tails again every tick would
    # cost more than the dead bytes it frees.
    index, plans = _index({BASE: (2_400_000, [2_400_000]), SMALL: (30_000, [10_000])})
    assert merge_set(plans, index, max_packs=12) == set()


def test_a_fragmented_pack_with_enough_dead_bytes_is_merged() -> None:
    index, plans = _index({BASE: (2_400_000, [2_400_000]), SMALL: (400_000, [100_000])})
    assert merge_set(plans, index, max_packs=12) == {SMALL}


def test_a_mostly_live_pack_is_never_merged_for_fragmentation() -> None:
    index, plans = _index({BASE: (2_400_000, [2_400_000]), SMALL: (400_000, [300_000])})
    assert merge_set(plans, index, max_packs=12) == set()


def test_above_max_packs_the_smallest_are_merged_whatever_their_dead_bytes() -> None:
    packs = {bytes([97 + i]) * 16: (1_000 * (i + 1), [1_000 * (i + 1)]) for i in range(6)}
    index, plans = _index({BASE: (2_400_000, [2_400_000]), **packs})
    merged = merge_set(plans, index, max_packs=4)
    # 7 packs + the new one > 4: the smallest go until 2 are kept (the base stays).
    assert BASE not in merged
    assert merged == set(list(packs)[:5])

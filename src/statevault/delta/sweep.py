"""The orphan sweep: collects packs no HEAD, retained version or retired list names.

Retirement (``DeltaStore.collect``) only reaches packs some HEAD's retired list names. A pack
can end up named nowhere: a save killed between its pack and its HEAD (a crash leftover), a
``delta=False`` save or a forced spool push over a delta HEAD (a plain frame has no retired
list), the packs of a HEAD kept aside as unreadable. The sweep finds those by a LIST of the
``.packs/`` sidecar, run only every ``sweep_every`` saves (amortized: one LIST, plus one small
read per HEAD and version slot).

The rule (docs/design.md, "Delta saves", says why it is safe): a pack is deleted only when two
sweeps of this writer, at least ``grace`` seconds apart by its own monotonic clock, both found
it, with the same modification stamp, named by none of: the current HEAD, its retired list,
every readable version slot and its retired list. The names are read before the LIST. A
writer writes its HEAD right after its pack, so a pack whose HEAD is still coming is not
unnamed for a whole grace period unless that one HEAD write takes longer than the grace.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SWEEP_EVERY", "Sweep"]

#: The orphan sweep runs after every this many saves of one manager (one LIST of the packs).
SWEEP_EVERY: Final = 64


class Sweep:
    """What one writer's earlier sweep found unnamed: (name, stamp) -> when (monotonic)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, float], float] = {}

    def step(
        self, listing: list[tuple[str, float]], named: set[str], now: float, grace: float
    ) -> list[str]:
        """The pack names to delete now; remembers the unnamed ones for the next step."""
        unnamed = {(n, stamp) for n, stamp in listing if n not in named}
        doomed = [n for n, stamp in unnamed if now - self.seen.get((n, stamp), now) >= grace]
        self.seen = {key: self.seen.get(key, now) for key in unnamed}
        return sorted(doomed)

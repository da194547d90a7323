"""The orphan sweep: collects packs no HEAD, retained version or retired list names.

Retirement (``DeltaStore.collect``) only reaches packs some HEAD's retired list names. A pack
can end up named nowhere: a save killed between its pack and its HEAD (a crash leftover), a
``delta=False`` save or a forced spool push over a delta HEAD (a plain frame has no retired
list), the packs of a HEAD kept aside as unreadable. The sweep finds those by a listing of the
``.packs/`` sidecar (``Store.list_dir``: one LIST on object stores, paged, never a request per
pack), run only every ``sweep_every`` saves (amortized: one listing, plus one small read per
HEAD and version slot). Every backend statevault ships lists; a store that cannot (``list_dir``
returns None: a third-party one) is never swept.

The rule (docs/design.md, "Delta saves", says why it is safe): a pack is deleted only when two
sweeps of this writer, at least ``grace`` seconds apart by its own monotonic clock, both found
it, with the same size and modification stamp, named by none of: the current HEAD, its
retired list, every readable version slot and its retired list. The names are read before the
listing. A writer writes its HEAD right after its pack, so a pack whose HEAD is still coming is
not unnamed for a whole grace period unless that one HEAD write takes longer than the grace.
The stamp only restarts the wait for a pack uploaded again under its name (a retried PUT);
where a store gives no stamp (None: some fsspec filesystems) the size stands in, which is
enough because a pack's name is never reused (it hashes a random nonce).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ..storage import Listed

__all__ = ["SWEEP_EVERY", "Sweep"]

#: The orphan sweep runs after every this many saves of one manager (one LIST of the packs).
SWEEP_EVERY: Final = 64


class Sweep:
    """What one writer's earlier sweep found unnamed: (name, size, stamp) -> when (monotonic)."""

    def __init__(self) -> None:
        self.seen: dict[Listed, float] = {}

    def step(
        self, listing: Iterable[Listed], named: set[str], now: float, grace: float
    ) -> list[str]:
        """The pack names to delete now; remembers the unnamed ones for the next step."""
        unnamed = {Listed(*entry) for entry in listing if entry.name not in named}
        doomed = {e.name for e in unnamed if now - self.seen.get(e, now) >= grace}
        self.seen = {e: self.seen.get(e, now) for e in unnamed}
        return sorted(doomed)

"""The ``statevault demo``: a simulated pairs trader that dies half-way and resumes exactly.

The trader watches a few currency pairs on a random-walk feed (two symbols per pair sharing a
common factor, so their spread mean-reverts), enters when the spread's z-score leaves
``[-entry_z, entry_z]`` and exits when it comes back inside ``exit_z`` (or runs past
``stop_z``). It keeps price history (tz-aware ``pandas`` Series), open positions (with
datetimes), per-pair peaks, a ``set`` of suspended pairs and portfolio figures, and saves all of
it after every bar through ``TradingStateManager``.

``run_demo`` runs the first half of the bars in a child process that kills itself after its
last save (SIGKILL where the platform has it: no shutdown code runs), then the second half in a
fresh child process that knows nothing but the saved state, and finally compares the saved
final state with an uninterrupted in-memory run of the same seed: they must be identical.

The feed depends only on the seed, the number of bars and pairs, so any process can rebuild
it; everything else the trader knows comes from the saved state. Needs numpy and pandas
(``pip install statevault[pandas]``).

The package: ``trader`` (the feed, the trader, ``simulate``), ``run`` (the processes, the
progress bar, ``run_demo``), ``compare`` (the exact comparison), ``__main__`` (the children's
``python -m statevault.demo PHASE``).
"""

from __future__ import annotations

from .compare import diff_states
from .run import DEFAULT_URL, run_demo
from .trader import DemoConfig, Feed, PairsTrader, simulate

__all__ = [
    "DEFAULT_URL",
    "DemoConfig",
    "Feed",
    "PairsTrader",
    "diff_states",
    "run_demo",
    "simulate",
]

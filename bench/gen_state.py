"""Deterministic, realistic pairs-trading states for the benchmark (sizes S, M, L).

The shape follows the specification (spec/state-management-module.md): open positions for about
one pair in five, per-pair price, spread and rolling-stats data on a tz-aware UTC one-minute
index, and the portfolio fields of the spec's "After" code plus a ``Decimal`` cash balance.

Every Series gets its own freshly built index and values buffer (nothing shared between
objects), as in a live system where each series comes from its own feed or computation; this
also keeps pickle from winning by memoizing shared objects that real states do not share.
Same ``size`` and ``seed`` give an identical state.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "SIZES",
    "SYMBOLS",
    "make_state",
    "make_trading_parts",
    "pair_names",
    "raw_array_bytes",
]

#: size name -> (number of pairs, one-minute bars per series)
SIZES: dict[str, tuple[int, int]] = {
    "S": (10, 500),
    "M": (50, 5_000),
    "L": (100, 50_000),
}

#: FX symbols and a typical price level; 16 symbols give 120 pairs, enough for L.
SYMBOLS: dict[str, float] = {
    "EURUSD": 1.0850,
    "GBPUSD": 1.2700,
    "AUDUSD": 0.6600,
    "NZDUSD": 0.6100,
    "USDCAD": 1.3600,
    "USDCHF": 0.8800,
    "USDJPY": 151.20,
    "EURGBP": 0.8550,
    "EURJPY": 164.00,
    "GBPJPY": 192.00,
    "AUDJPY": 99.80,
    "EURCHF": 0.9550,
    "EURAUD": 1.6450,
    "GBPCHF": 1.1200,
    "CADJPY": 111.20,
    "AUDNZD": 1.0820,
}

# The last bar of every series; the first bar is ``bars - 1`` minutes earlier.
_END = datetime(2024, 6, 28, 20, 59, tzinfo=UTC)

_STATS_ROWS = 5


def pair_names(n_pairs: int) -> list[str]:
    """The first ``n_pairs`` pair names, like ``"EURUSD-GBPUSD"``, in a fixed order."""
    names = [f"{a}-{b}" for a, b in itertools.combinations(SYMBOLS, 2)]
    if n_pairs > len(names):
        raise ValueError(f"at most {len(names)} pairs can be generated, asked for {n_pairs}")
    return names[:n_pairs]


def _size(size: str) -> tuple[int, int]:
    try:
        return SIZES[size.upper()]
    except KeyError:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}") from None


def _index(bars: int) -> pd.DatetimeIndex:
    """A fresh tz-aware UTC minute index (freq "min", name "time") ending at ``_END``."""
    return pd.date_range(end=_END, periods=bars, freq="min", tz="UTC", name="time")


def _quotes(rng: np.random.Generator, level: float, bars: int) -> np.ndarray:
    """A random-walk quote series rounded like real FX quotes (5 digits, 3 for JPY levels)."""
    steps = rng.normal(0.0, 1.5e-4, bars)
    walk = level * np.exp(np.cumsum(steps))
    return np.round(walk, 3 if level > 20 else 5)


def make_trading_parts(
    size: str, seed: int = 0
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The state split as ``TradingStateManager.save_trading_state`` takes it.

    Returns ``(active_positions, pair_states, portfolio_data)``; ``make_state`` is the same data
    as one dict with the portfolio fields at the top level.
    """
    n_pairs, bars = _size(size)
    rng = np.random.default_rng(seed)
    pairs = pair_names(n_pairs)
    quotes = {sym: _quotes(rng, level, bars) for sym, level in SYMBOLS.items()}
    last_update = _END + timedelta(seconds=7, microseconds=250_000)

    pair_states: dict[str, Any] = {}
    for pair in pairs:
        sym1, sym2 = pair.split("-")
        hedge_ratio = float(rng.uniform(0.5, 1.5) * SYMBOLS[sym1] / SYMBOLS[sym2])
        # Copies: each series owns its buffer, as it would coming from its own feed.
        price1 = pd.Series(quotes[sym1].copy(), index=_index(bars), name=sym1)
        price2 = pd.Series(quotes[sym2].copy(), index=_index(bars), name=sym2)
        spread = pd.Series(
            price1.to_numpy() - hedge_ratio * price2.to_numpy(), index=_index(bars), name="spread"
        )
        tail = spread.to_numpy()[-_STATS_ROWS:]
        stats = pd.DataFrame(
            {
                "spread_mean": tail + rng.normal(0.0, 1e-4, _STATS_ROWS),
                "spread_std": rng.uniform(1e-4, 5e-4, _STATS_ROWS),
                "zscore": rng.normal(0.0, 1.5, _STATS_ROWS),
                "half_life": rng.uniform(20.0, 240.0, _STATS_ROWS),
                "correlation": rng.uniform(0.6, 0.95, _STATS_ROWS),
            },
            index=_index(bars)[-_STATS_ROWS:],
        )
        pair_states[pair] = {
            "price1": price1,
            "price2": price2,
            "spread": spread,
            "stats": stats,
            "last_update": last_update,
            "hedge_ratio": hedge_ratio,
        }

    active_positions: dict[str, Any] = {}
    for k, pair in enumerate(pairs[::5]):
        p1 = float(pair_states[pair]["price1"].iloc[-1 - 37 * k])
        p2 = float(pair_states[pair]["price2"].iloc[-1 - 37 * k])
        lots1 = round(float(rng.uniform(0.1, 2.0)), 2)
        active_positions[pair] = {
            "entry_time": _END - timedelta(minutes=37 * k + 3, seconds=12),
            # Long the spread when it is cheap (negative z-score), short when it is rich.
            "entry_zscore": (-1.0 if k % 2 == 0 else 1.0) * float(rng.uniform(2.0, 3.0)),
            "side": "long" if k % 2 == 0 else "short",
            "lots": (lots1, round(lots1 * pair_states[pair]["hedge_ratio"], 2)),
            "entry_prices": (p1, p2),
            "hedge_ratio": pair_states[pair]["hedge_ratio"],
            "tickets": [int(t) for t in rng.integers(10_000_000, 99_999_999, 2)],
            "stop_zscore": 4.0,
        }

    peak = 100_000.0 + float(rng.uniform(0.0, 25_000.0))
    portfolio_data: dict[str, Any] = {
        "portfolio_peak_value": peak,
        "pair_peak_values": {pair: float(rng.uniform(1_000.0, 5_000.0)) for pair in pairs},
        "suspended_pairs": set(pairs[3::7]),
        "portfolio_trading_suspended": False,
        "cash": Decimal("100000.00"),
    }
    return active_positions, pair_states, portfolio_data


def make_state(size: str, seed: int = 0) -> dict[str, Any]:
    """One whole trading state of ``size`` ("S", "M" or "L") as a single dict.

    Keys: ``active_positions``, ``pair_states`` and the portfolio fields
    (``portfolio_peak_value``, ``pair_peak_values``, ``suspended_pairs``,
    ``portfolio_trading_suspended``, ``cash``) at the top level, as in the spec's loaded state.
    """
    active_positions, pair_states, portfolio_data = make_trading_parts(size, seed)
    return {"active_positions": active_positions, "pair_states": pair_states, **portfolio_data}


def raw_array_bytes(state: Any) -> int:
    """Sum of ``nbytes`` of every numpy array and pandas values/index buffer in ``state``.

    The baseline for the memory target: how much binary data a save has to move. Each object is
    counted once even if it is referenced twice.
    """
    seen: set[int] = set()

    def walk(obj: Any) -> int:
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            return int(obj.nbytes)
        if isinstance(obj, pd.Series):
            return int(obj.array.nbytes) + walk(obj.index)
        if isinstance(obj, pd.DataFrame):
            cols = sum(int(obj[c].array.nbytes) for c in obj.columns)
            return cols + walk(obj.index)
        if isinstance(obj, pd.Index):
            return int(obj.nbytes)
        if isinstance(obj, dict):
            return sum(walk(v) for v in obj.values())
        if isinstance(obj, list | tuple | set | frozenset):
            return sum(walk(v) for v in obj)
        return 0

    return walk(state)

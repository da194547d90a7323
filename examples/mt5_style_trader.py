"""The specification's MT5-style trading component, with its state kept by statevault.

``MyTradingComponent`` is the component of spec/state-management-module.md ("Integration with
Existing Components"), filled in: it holds open positions, per-pair price history (tz-aware
pandas Series) and the portfolio figures of the spec's "After" code, saves them after every
tick through ``TradingStateManager`` and restores them on start. The script runs one trading
session, then "restarts" (a new component built from the same config) and checks that the
restarted component knows exactly what the first one knew.

    python examples/mt5_style_trader.py                    # state in ./demo_state/mt5_trader.state
    python examples/mt5_style_trader.py --state-file s3://bucket/trader.state
    STATEVAULT_KEY=... python examples/mt5_style_trader.py # encrypted at rest

Needs pandas (``pip install 'statevault[pandas]'``).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from statevault import TradingStateManager


@dataclass
class TradingConfig:
    """The trader's configuration; ``state_file`` may be a path or any fsspec URL."""

    state_file: str = "./demo_state/mt5_trader.state"
    pairs: tuple[str, ...] = ("EURUSD-GBPUSD", "AUDUSD-NZDUSD")
    entry_spread: float = 0.0015
    max_drawdown: float = 0.05


class MyTradingComponent:
    """The spec's component: its whole memory goes through one ``TradingStateManager``."""

    def __init__(self, config: TradingConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self.positions: dict[str, dict[str, Any]] = {}
        self.pair_states: dict[str, dict[str, Any]] = {}
        self.portfolio_peak_value = 100_000.0
        self.pair_peak_values: dict[str, float] = {}
        self.suspended_pairs: set[str] = set()
        self.portfolio_trading_suspended = False
        # The manager shares the component's lock (spec: "Thread Safety").
        self.state_manager = TradingStateManager(config.state_file, self._lock)
        self.load_state()

    # -- the spec's two methods --------------------------------------------------------------

    def save_state(self) -> bool:
        success = self.state_manager.save_trading_state(
            active_positions=self.positions,
            pair_states=self.pair_states,
            portfolio_data=self.get_portfolio_data(),
        )
        return success

    def load_state(self) -> None:
        state = self.state_manager.load_trading_state()
        if state:
            self.positions = state["active_positions"]
            self.pair_states = state["pair_states"]
            # Load other state data...
            self.portfolio_peak_value = state.get("portfolio_peak_value", 100_000.0)
            self.pair_peak_values = state.get("pair_peak_values", {})
            self.suspended_pairs = state.get("suspended_pairs", set())
            self.portfolio_trading_suspended = state.get("portfolio_trading_suspended", False)

    def get_portfolio_data(self) -> dict[str, Any]:
        # The spec's "After" code saved list(self.suspended_pairs); statevault keeps the set.
        return {
            "portfolio_peak_value": self.portfolio_peak_value,
            "pair_peak_values": self.pair_peak_values,
            "suspended_pairs": self.suspended_pairs,
            "portfolio_trading_suspended": self.portfolio_trading_suspended,
        }

    # -- trading ---------------------------------------------------------------------------

    def on_tick(self, pair: str, when: datetime, price1: float, price2: float) -> None:
        """Record a quote for ``pair``, open or close a position, save."""
        with self._lock:
            ps = self.pair_states.setdefault(
                pair,
                {
                    "price1": pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC")),
                    "price2": pd.Series(dtype="float64", index=pd.DatetimeIndex([], tz="UTC")),
                },
            )
            stamp = pd.DatetimeIndex([when]).as_unit("us")
            for key, price in (("price1", price1), ("price2", price2)):
                new = pd.Series([price], index=stamp, dtype="float64")
                ps[key] = pd.concat([ps[key], new]) if len(ps[key]) else new
            spread = price1 - price2
            ps["last_spread"] = spread
            position = self.positions.get(pair)
            if position is None and abs(spread) > self.config.entry_spread:
                if pair not in self.suspended_pairs and not self.portfolio_trading_suspended:
                    self.positions[pair] = {
                        "entry_time": when,
                        "side": "short" if spread > 0 else "long",
                        "entry_spread": spread,
                    }
            elif position is not None and abs(spread) < self.config.entry_spread / 3:
                pnl = (position["entry_spread"] - spread) * (
                    1 if position["side"] == "short" else -1
                )
                self.pair_peak_values[pair] = max(self.pair_peak_values.get(pair, 0.0), pnl)
                del self.positions[pair]
            self.save_state()


def run(state_file: str, ticks: int = 50, seed: int = 11) -> int:
    """One session of ``ticks`` quotes per pair, a restart, and a check; 0 when identical."""
    config = TradingConfig(state_file=state_file)
    trader = MyTradingComponent(config)
    if trader.state_manager.state_exists():
        trader.state_manager.delete_state()
        trader = MyTradingComponent(config)
    rng = random.Random(seed)
    start = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
    for i in range(ticks):
        for pair in config.pairs:
            p2 = 1.0 + rng.gauss(0, 0.01)
            trader.on_tick(pair, start + timedelta(minutes=i), p2 + rng.gauss(0, 0.002), p2)
    trader.suspended_pairs.add(config.pairs[-1])
    trader.save_state()
    print(
        f"session 1: {ticks} ticks on {len(config.pairs)} pairs, "
        f"{len(trader.positions)} open position(s), saved to {trader.state_manager.url}"
    )

    restarted = MyTradingComponent(config)  # a new process would do exactly this
    same = (
        restarted.positions == trader.positions
        and restarted.suspended_pairs == trader.suspended_pairs
        and isinstance(restarted.suspended_pairs, set)
        and restarted.pair_peak_values == trader.pair_peak_values
        and all(
            restarted.pair_states[p][k].equals(trader.pair_states[p][k])
            and restarted.pair_states[p][k].index.tz == trader.pair_states[p][k].index.tz
            for p in trader.pair_states
            for k in ("price1", "price2")
        )
    )
    summary = restarted.state_manager.get_portfolio_summary()
    print(
        f"session 2: restored {len(restarted.positions)} position(s), "
        f"{sum(len(s['price1']) for s in restarted.pair_states.values())} bars of history, "
        f"suspended pairs {sorted(restarted.suspended_pairs)}; "
        f"summary generation {summary['generation']}, "
        f"peak {summary['portfolio']['portfolio_peak_value']:,.2f}"
    )
    print("restored state identical to the saved one" if same else "restored state DIFFERS")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--state-file", default=TradingConfig.state_file)
    parser.add_argument("--ticks", type=int, default=50)
    args = parser.parse_args(argv)
    return run(args.state_file, args.ticks)


if __name__ == "__main__":
    sys.exit(main())

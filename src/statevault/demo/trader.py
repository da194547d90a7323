"""The demo's trader: a deterministic feed and a pairs trader that saves after every bar.

``Feed`` is a function of the ``DemoConfig`` alone (seed, bars, pairs), so any process can
rebuild it; everything else ``PairsTrader`` knows comes from its saved state, which it writes
through ``TradingStateManager`` after every bar and reads back in ``load_state``. ``simulate``
runs all bars in memory without saving: the reference a resumed run must equal exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from ..errors import StateError
from ..trading import TradingStateManager

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["DemoConfig", "Feed", "PairsTrader", "require_pandas", "simulate"]

_PAIRS: tuple[tuple[str, float, str, float], ...] = (
    ("EURUSD", 1.0850, "GBPUSD", 1.2700),
    ("AUDUSD", 0.6600, "NZDUSD", 0.6100),
    ("USDCAD", 1.3600, "USDCHF", 0.8800),
    ("EURJPY", 164.00, "GBPJPY", 192.00),
    ("EURCHF", 0.9550, "GBPCHF", 1.1200),
    ("AUDJPY", 99.80, "CADJPY", 111.20),
    ("EURGBP", 0.8550, "EURAUD", 1.6450),
    ("XAUUSD", 2330.0, "XAGUSD", 29.50),
)

_START = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines a demo run; two runs with equal configs trade identically."""

    bars: int = 400
    seed: int = 5
    pairs: int = 4
    window: int = 30
    entry_z: float = 2.0
    exit_z: float = 0.5
    stop_z: float = 4.0
    notional: float = 10_000.0
    initial_capital: float = 100_000.0
    #: A pair whose P&L falls this far below its peak is suspended (position closed).
    pair_max_drawdown: float = 20.0
    #: New entries stop when the portfolio falls this fraction below its peak.
    portfolio_max_drawdown: float = 0.02
    #: Bars of price history kept per symbol (older bars are dropped, as a live trader would).
    max_history: int = 1_000

    def __post_init__(self) -> None:
        if self.bars < 2:
            raise ValueError("the demo needs at least 2 bars")
        if not 1 <= self.pairs <= len(_PAIRS):
            raise ValueError(f"pairs must be between 1 and {len(_PAIRS)}")

    def pair_names(self) -> list[str]:
        """Names of the traded pairs, like ``"EURUSD-GBPUSD"``."""
        return [f"{a}-{b}" for a, _, b, _ in _PAIRS[: self.pairs]]


def require_pandas() -> None:
    """Raise ``StateError`` saying how to install them unless numpy and pandas import."""
    try:
        import numpy  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as e:
        raise StateError("the demo needs numpy and pandas: pip install 'statevault[pandas]'") from e


class Feed:
    """Deterministic one-minute quotes for the configured pairs (a function of the config)."""

    def __init__(self, config: DemoConfig) -> None:
        import numpy as np

        self.config = config
        rng = np.random.default_rng(config.seed)
        n, bars = config.pairs, config.bars
        factor = np.cumsum(rng.normal(0.0, 4e-4, (bars, n)), axis=0)
        # An AR(1) spread: mean-reverting, so z-score entries are followed by exits.
        shocks = rng.normal(0.0, 3e-4, (bars, n))
        spread = np.empty((bars, n))
        spread[0] = shocks[0]
        for t in range(1, bars):
            spread[t] = 0.93 * spread[t - 1] + shocks[t]
        idio = np.cumsum(rng.normal(0.0, 3e-5, (bars, n)), axis=0)
        levels1 = np.array([p[1] for p in _PAIRS[:n]])
        levels2 = np.array([p[3] for p in _PAIRS[:n]])
        self.price1: np.ndarray = np.round(levels1 * np.exp(factor + spread), 5)
        self.price2: np.ndarray = np.round(levels2 * np.exp(factor + idio), 5)
        self.symbols: list[tuple[str, str]] = [(p[0], p[2]) for p in _PAIRS[:n]]
        start_us = int(_START.timestamp()) * 1_000_000
        #: Bar close times as microseconds since the epoch (UTC), one per bar.
        self.stamps_us: np.ndarray = start_us + np.arange(bars, dtype="int64") * 60_000_000

    def time(self, bar: int) -> datetime:
        """The close time of ``bar`` (tz-aware UTC)."""
        return _START + timedelta(minutes=bar)


class PairsTrader:
    """A small z-score pairs trader whose whole memory is its trading state.

    ``on_bar(bar)`` processes one bar of the feed; ``save_state()`` / ``load_state()`` follow
    the specification's ``MyTradingComponent``. Not thread-safe (one trading loop owns it).
    """

    def __init__(
        self,
        config: DemoConfig,
        feed: Feed | None = None,
        state_manager: TradingStateManager | None = None,
    ) -> None:
        self.config = config
        self.feed = feed or Feed(config)
        self.state_manager = state_manager
        self.pairs = config.pair_names()
        self.active_positions: dict[str, dict[str, Any]] = {}
        self.pair_states: dict[str, dict[str, Any]] = {}
        self.portfolio_peak_value = config.initial_capital
        self.pair_peak_values: dict[str, float] = {p: 0.0 for p in self.pairs}
        self.suspended_pairs: set[str] = set()
        self.portfolio_trading_suspended = False
        self.realized_pnl = 0.0
        self.trade_count = 0
        self.closed_trades: list[dict[str, Any]] = []
        self.next_bar = 0
        self.portfolio_value = config.initial_capital
        import pandas as pd

        for k, pair in enumerate(self.pairs):
            sym1, sym2 = self.feed.symbols[k]
            empty = pd.DatetimeIndex([], tz="UTC", name="time").as_unit("us")
            self.pair_states[pair] = {
                "price1": pd.Series([], index=empty, dtype="float64", name=sym1),
                "price2": pd.Series([], index=empty.copy(), dtype="float64", name=sym2),
                "zscore": None,
                "realized_pnl": 0.0,
                "trades": 0,
                "last_update": None,
            }

    # -- persistence (the specification's component pattern) -----------------------------

    def portfolio_data(self) -> dict[str, Any]:
        """The portfolio figures saved beside positions and pair states."""
        return {
            "portfolio_value": self.portfolio_value,
            "portfolio_peak_value": self.portfolio_peak_value,
            "pair_peak_values": self.pair_peak_values,
            "suspended_pairs": self.suspended_pairs,
            "portfolio_trading_suspended": self.portfolio_trading_suspended,
            "realized_pnl": self.realized_pnl,
            "trade_count": self.trade_count,
            "closed_trades": self.closed_trades,
            "next_bar": self.next_bar,
            "demo": asdict(self.config),
        }

    def snapshot(self) -> dict[str, Any]:
        """The state as ``load_trading_state()`` returns it once saved."""
        return {
            "active_positions": self.active_positions,
            "pair_states": self.pair_states,
            **self.portfolio_data(),
        }

    def save_state(self) -> bool:
        """Save everything through the state manager; False (already logged) on failure."""
        if self.state_manager is None:
            return True
        return self.state_manager.save_trading_state(
            active_positions=self.active_positions,
            pair_states=self.pair_states,
            portfolio_data=self.portfolio_data(),
        )

    def load_state(self) -> bool:
        """Restore from the saved state; False when nothing is saved (a first start)."""
        if self.state_manager is None:
            return False
        state = self.state_manager.load_trading_state()
        if not state:
            return False
        saved = state.get("demo")
        if saved != asdict(self.config):
            raise StateError(
                f"{self.state_manager.url} holds a demo run with other settings ({saved}); "
                "delete it or pick another --url"
            )
        self.active_positions = state["active_positions"]
        self.pair_states = state["pair_states"]
        self.portfolio_value = state["portfolio_value"]
        self.portfolio_peak_value = state["portfolio_peak_value"]
        self.pair_peak_values = state["pair_peak_values"]
        self.suspended_pairs = state["suspended_pairs"]
        self.portfolio_trading_suspended = state["portfolio_trading_suspended"]
        self.realized_pnl = state["realized_pnl"]
        self.trade_count = state["trade_count"]
        self.closed_trades = state["closed_trades"]
        self.next_bar = state["next_bar"]
        return True

    # -- trading ----------------------------------------------------------------------------

    def _append(self, series: pd.Series, bar: int, value: float) -> pd.Series:
        """``series`` with one more bar; built from numpy arrays (pd.concat is 7x slower)."""
        import numpy as np
        import pandas as pd

        keep = self.config.max_history - 1
        index = cast("pd.DatetimeIndex", series.index)
        stamps = np.append(index.asi8[-keep:], self.feed.stamps_us[bar])
        values = np.append(series.to_numpy()[-keep:], value)
        new_index = pd.DatetimeIndex(stamps.view("M8[us]"), name="time").tz_localize("UTC")
        return pd.Series(values, index=new_index, name=series.name, copy=False)

    def _pnl(self, pos: Mapping[str, Any], p1: float, p2: float) -> float:
        sign = 1.0 if pos["side"] == "long" else -1.0
        leg1 = pos["units"][0] * (p1 - pos["entry_prices"][0])
        leg2 = pos["units"][1] * (p2 - pos["entry_prices"][1])
        return float(sign * (leg1 - leg2))

    def _close(self, pair: str, when: datetime, p1: float, p2: float, reason: str) -> None:
        pos = self.active_positions.pop(pair)
        pnl = self._pnl(pos, p1, p2)
        self.realized_pnl += pnl
        self.trade_count += 1
        ps = self.pair_states[pair]
        ps["realized_pnl"] += pnl
        ps["trades"] += 1
        self.closed_trades.append(
            {
                "pair": pair,
                "side": pos["side"],
                "entry_time": pos["entry_time"],
                "exit_time": when,
                "pnl": pnl,
                "reason": reason,
            }
        )

    def on_bar(self, bar: int) -> None:
        """Process ``bar`` of the feed: update history, manage positions, update figures."""
        import numpy as np

        if bar != self.next_bar:
            raise StateError(f"the trader expects bar {self.next_bar}, got {bar}")
        cfg = self.config
        when = self.feed.time(bar)
        unrealized = 0.0
        for k, pair in enumerate(self.pairs):
            p1 = float(self.feed.price1[bar, k])
            p2 = float(self.feed.price2[bar, k])
            ps = self.pair_states[pair]
            ps["price1"] = self._append(ps["price1"], bar, p1)
            ps["price2"] = self._append(ps["price2"], bar, p2)
            ps["last_update"] = when
            z: float | None = None
            if len(ps["price1"]) >= cfg.window:
                s = np.log(ps["price1"].to_numpy()[-cfg.window :]) - np.log(
                    ps["price2"].to_numpy()[-cfg.window :]
                )
                std = float(s.std())
                z = float((s[-1] - s.mean()) / std) if std > 0 else 0.0
            ps["zscore"] = z
            pos = self.active_positions.get(pair)
            if pos is not None and z is not None:
                if abs(z) < cfg.exit_z:
                    self._close(pair, when, p1, p2, "exit")
                elif abs(z) > cfg.stop_z:
                    self._close(pair, when, p1, p2, "stop")
            elif (
                z is not None
                and abs(z) > cfg.entry_z
                and abs(z) <= cfg.stop_z
                and pair not in self.suspended_pairs
                and not self.portfolio_trading_suspended
            ):
                self.active_positions[pair] = {
                    # Short the spread when it is rich (positive z), long when it is cheap.
                    "side": "short" if z > 0 else "long",
                    "entry_time": when,
                    "entry_bar": bar,
                    "entry_zscore": z,
                    "entry_prices": (p1, p2),
                    "units": (round(cfg.notional / p1, 2), round(cfg.notional / p2, 2)),
                }
            pos = self.active_positions.get(pair)
            open_pnl = self._pnl(pos, p1, p2) if pos is not None else 0.0
            pair_pnl = ps["realized_pnl"] + open_pnl
            self.pair_peak_values[pair] = max(self.pair_peak_values[pair], pair_pnl)
            if (
                pair not in self.suspended_pairs
                and self.pair_peak_values[pair] - pair_pnl > cfg.pair_max_drawdown
            ):
                self.suspended_pairs.add(pair)
                if pos is not None:
                    self._close(pair, when, p1, p2, "pair suspended")
                    open_pnl = 0.0
            unrealized += open_pnl
        self.portfolio_value = cfg.initial_capital + self.realized_pnl + unrealized
        self.portfolio_peak_value = max(self.portfolio_peak_value, self.portfolio_value)
        if self.portfolio_value < self.portfolio_peak_value * (1 - cfg.portfolio_max_drawdown):
            self.portfolio_trading_suspended = True
        self.next_bar = bar + 1


def simulate(config: DemoConfig) -> dict[str, Any]:
    """Run all bars in memory, without saving; return the final state (the reference)."""
    trader = PairsTrader(config)
    for bar in range(config.bars):
        trader.on_bar(bar)
    return trader.snapshot()

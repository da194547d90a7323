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
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any, cast

from .errors import StateError
from .trading import TradingStateManager

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DEFAULT_URL",
    "DemoConfig",
    "Feed",
    "PairsTrader",
    "diff_states",
    "run_demo",
    "simulate",
]

#: Where ``statevault demo`` keeps its state unless told otherwise (git-ignored).
DEFAULT_URL = "./demo_state/trader.state"

#: Exit status of the first child when ``SIGKILL`` is not available (Windows).
_CRASH_STATUS = 86

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


def _require_pandas() -> None:
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


# -- comparing states ---------------------------------------------------------------------


def diff_states(a: Any, b: Any, path: str = "state", limit: int = 20) -> list[str]:
    """Differences between two states, exact: types, values, dtypes, index, tz, names.

    Returns up to ``limit`` human-readable lines, ``[]`` when the states are identical.
    """
    out: list[str] = []
    _diff(a, b, path, out, limit)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if type(a) is not type(b):
        out.append(f"{path}: {type(a).__name__} != {type(b).__name__}")
        return
    if isinstance(a, dict):
        if list(a) != list(b):
            out.append(f"{path}: keys {list(a)} != {list(b)}")
            return
        for k in a:
            _diff(a[k], b[k], f"{path}[{k!r}]", out, limit)
        return
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, limit)
        return
    mod = type(a).__module__
    if mod.startswith("pandas"):
        import pandas.testing as pdt

        try:
            if hasattr(a, "columns"):
                pdt.assert_frame_equal(a, b, check_exact=True, check_freq=True)
            elif hasattr(a, "index"):
                pdt.assert_series_equal(a, b, check_exact=True, check_freq=True)
            elif hasattr(a, "freq") or hasattr(a, "dtype"):
                pdt.assert_index_equal(a, b, exact=True, check_exact=True)
            elif a != b:
                out.append(f"{path}: {a!r} != {b!r}")
        except AssertionError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "differs"
            out.append(f"{path}: {first}")
        return
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return
    if isinstance(a, datetime) and a.tzinfo != b.tzinfo:
        out.append(f"{path}: tzinfo {a.tzinfo!r} != {b.tzinfo!r}")
        return
    if a != b:
        out.append(f"{path}: {a!r} != {b!r}")


# -- progress -----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal; progress lines every 10 % otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None, done: int = 0) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        # A resumed run continues the lines of the run before it instead of repeating one.
        self._last_step = int(min(done / self.total, 1.0) * 10) if done else -1
        self._last_draw = 0.0

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        """Show that ``done`` of ``total`` bars are done (a terminal: <= 20 redraws a second)."""
        frac = min(done / self.total, 1.0)
        if self.tty:
            now = time.monotonic()
            if not force and done < self.total and now - self._last_draw < 0.05:
                return
            self._last_draw = now
            width = 30
            filled = int(frac * width)
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r[{bar}] {done:>6}/{self.total} bars {note}   ")
            if done >= self.total:
                self.stream.write("\n")
        else:
            step = int(frac * 10)
            if step == self._last_step:
                return
            self._last_step = step
            self.stream.write(f"  {done:>6}/{self.total} bars ({frac:4.0%}) {note}\n")
        self.stream.flush()

    def break_line(self) -> None:
        """End a half-drawn bar so that a message can be printed on its own line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _note(trader: PairsTrader) -> str:
    return (
        f"value {trader.portfolio_value:,.2f}  open {len(trader.active_positions)}"
        f"  trades {trader.trade_count}"
    )


def _run_bars(trader: PairsTrader, start: int, stop: int, progress: Progress | None) -> None:
    for bar in range(start, stop):
        trader.on_bar(bar)
        if not trader.save_state():
            raise StateError(
                f"saving bar {bar} to {trader.state_manager.url if trader.state_manager else '?'}"
                " failed (see the log above)"
            )
        if progress is not None:
            progress.update(bar + 1, _note(trader), force=bar + 1 == stop)


def _describe_resume(trader: PairsTrader) -> str:
    lengths = {len(ps["price1"]) for ps in trader.pair_states.values()}
    bars = "/".join(str(n) for n in sorted(lengths))
    positions = ", ".join(f"{p} {pos['side']}" for p, pos in trader.active_positions.items())
    suspended = ", ".join(sorted(trader.suspended_pairs)) or "none"
    return (
        f"resumed from the saved state alone at bar {trader.next_bar}: "
        f"{len(trader.active_positions)} open position(s) ({positions or 'none'}), "
        f"{len(trader.pair_states)} pairs x {bars} bars of price history, "
        f"portfolio value {trader.portfolio_value:,.2f} (peak {trader.portfolio_peak_value:,.2f}), "
        f"suspended pairs: {suspended}"
    )


# -- phases (each may run in its own process) ---------------------------------------------


def run_phase(
    phase: str, config: DemoConfig, manager: TradingStateManager, *, in_child: bool = False
) -> None:
    """Run one phase of the demo with a brand-new trader built from ``manager``'s state.

    ``"first"`` runs bars ``[0, bars // 2)`` from an empty state and then, ``in_child``,
    kills its own process right after the last save (otherwise it just drops the trader).
    ``"resume"`` loads the saved state and runs the remaining bars.
    """
    trader = PairsTrader(config, state_manager=manager)
    progress = Progress(config.bars)
    half = config.bars // 2
    if phase == "first":
        if trader.load_state():
            raise StateError(f"{manager.url} already holds a state; the demo starts empty")
        _run_bars(trader, 0, half, progress)
        progress.break_line()
        if not in_child:
            print(
                f"the trader is dropped after saving bar {half - 1}, as if its process had died",
                flush=True,
            )
            return
        print(
            f"process {os.getpid()} dies after saving bar {half - 1} (no shutdown code runs)",
            flush=True,
        )
        sys.stderr.flush()
        if hasattr(signal, "SIGKILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(_CRASH_STATUS)
    if phase == "resume":
        if not trader.load_state():
            raise StateError(f"no saved state at {manager.url} to resume from")
        who = f"new process {os.getpid()}" if in_child else "a new trader object"
        print(f"{who} {_describe_resume(trader)}", flush=True)
        progress = Progress(config.bars, done=trader.next_bar)
        progress.update(trader.next_bar, _note(trader))
        _run_bars(trader, trader.next_bar, config.bars, progress)
        return
    raise ValueError(f"unknown phase {phase!r}")


def _worker_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the child processes: ``python -m statevault.demo PHASE --config JSON``.

    The URL, storage options and key come from ``STATEVAULT_URL``,
    ``STATEVAULT_STORAGE_OPTIONS`` and ``STATEVAULT_KEY`` (never the command line, where
    other users could read them); ``STATEVAULT_KEY_FILE`` names a key file if set.
    """
    parser = argparse.ArgumentParser(prog="python -m statevault.demo")
    parser.add_argument("phase", choices=["first", "resume"])
    parser.add_argument("--config", required=True, help="DemoConfig as JSON")
    args = parser.parse_args(argv)
    try:
        config = DemoConfig(**json.loads(args.config))
        options: dict[str, Any] = {}
        key_file = os.environ.get("STATEVAULT_KEY_FILE")
        if key_file:
            options["key_file"] = key_file
        manager = TradingStateManager.from_env(**options)
        run_phase(args.phase, config, manager, in_child=True)
    except StateError as e:
        print(f"statevault demo ({args.phase}): {e}", file=sys.stderr, flush=True)
        return 1
    return 0


# -- the whole demo -----------------------------------------------------------------------


def _child_env(
    url: str,
    storage_options: Mapping[str, Any] | None,
    keys: Sequence[str],
    key_file: str | None,
) -> dict[str, str]:
    env = dict(os.environ)
    env["STATEVAULT_URL"] = url
    env["STATEVAULT_STORAGE_OPTIONS"] = json.dumps(dict(storage_options or {}))
    if keys:
        env["STATEVAULT_KEY"] = ",".join(keys)  # newest first, as the manager reads it
    if key_file is not None:
        env["STATEVAULT_KEY_FILE"] = key_file
    # The children must import this same statevault, wherever it was imported from.
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


def _spawn(phase: str, config: DemoConfig, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "statevault.demo", phase, "--config", json.dumps(asdict(config))]
    return subprocess.Popen(cmd, env=dict(env))


def run_demo(
    url: str = DEFAULT_URL,
    config: DemoConfig | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    encryption_key: str | Sequence[str] | None = None,
    key_file: str | None = None,
    in_process: bool = False,
    out: IO[str] | None = None,
) -> int:
    """Run the demo at ``url``; return 0 when the resumed run matches, else a non-zero status.

    Both halves run in child processes unless ``in_process`` (forced for ``memory://``, which
    a child cannot see). An existing state at ``url`` is replaced only if an earlier demo
    wrote it; anything else makes the demo refuse (``StateError``) rather than touch it.
    Raises ``StateError`` subclasses for storage and key problems.
    """
    _require_pandas()
    config = config or DemoConfig()
    out = out if out is not None else sys.stdout
    options: dict[str, Any] = {"storage_options": dict(storage_options or {})}
    keys = [encryption_key] if isinstance(encryption_key, str) else list(encryption_key or [])
    if keys:
        options["encryption_key"] = keys
    if key_file is not None:
        options["key_file"] = key_file
    manager = TradingStateManager(url, **options)
    in_process = in_process or manager.store.protocol == "memory"

    if manager.state_exists():
        summary = manager.get_portfolio_summary()
        if not isinstance(summary.get("portfolio", {}).get("demo"), dict):
            raise StateError(
                f"{manager.url} holds a state the demo did not write; the demo will not replace "
                "it: pick another --url"
            )
        manager.delete_state()

    started = time.monotonic()
    half = config.bars // 2
    print(
        f"statevault demo: a pairs trader on {config.pairs} pairs, {config.bars} one-minute "
        f"bars (seed {config.seed}), saving after every bar to {manager.url}",
        file=out,
        flush=True,
    )
    print(
        f"first process trades bars 0-{half - 1} and is killed; a fresh process resumes "
        "from the saved state alone",
        file=out,
        flush=True,
    )
    if in_process:
        run_phase("first", config, TradingStateManager(url, **options))
        run_phase("resume", config, TradingStateManager(url, **options))
        reference = simulate(config)
    else:
        env = _child_env(url, storage_options, keys, key_file)
        child = _spawn("first", config, env)
        try:
            # The uninterrupted run, computed here while the first child trades.
            reference = simulate(config)
        finally:
            status = child.wait()
        died = status in (-getattr(signal, "SIGKILL", 9), _CRASH_STATUS)
        if not died:
            print(f"statevault demo: the first process failed (exit {status})", file=sys.stderr)
            return status or 1
        status = _spawn("resume", config, env).wait()
        if status != 0:
            print(f"statevault demo: the resumed process failed (exit {status})", file=sys.stderr)
            return status

    # A third manager, built from nothing but the URL, reads what the two processes left.
    final = TradingStateManager(url, **options).load_trading_state()
    diffs = diff_states(reference, final)
    info = manager.get_state_info()
    elapsed = time.monotonic() - started
    _print_summary(final, info, config, elapsed, out)
    if diffs:
        print(
            "resume check FAILED: the final state differs from an uninterrupted run:",
            file=out,
        )
        for line in diffs:
            print(f"  {line}", file=out)
        return 11
    print(
        "resume check: the final state is identical to an uninterrupted run with the same seed "
        "(positions, price history, portfolio figures, trade log)",
        file=out,
        flush=True,
    )
    return 0


def _print_summary(
    state: Mapping[str, Any],
    info: Mapping[str, Any],
    config: DemoConfig,
    elapsed: float,
    out: IO[str],
) -> None:
    pnl = state.get("realized_pnl", 0.0)
    positions = state.get("active_positions", {})
    size = info.get("size", 0)
    lines = [
        "",
        f"summary after {state.get('next_bar')} bars ({elapsed:.1f} s):",
        f"  portfolio value   {state.get('portfolio_value', 0.0):,.2f} "
        f"(peak {state.get('portfolio_peak_value', 0.0):,.2f}, "
        f"start {config.initial_capital:,.2f})",
        f"  realized P&L      {pnl:+,.2f} over {state.get('trade_count')} closed trades",
        "  open positions    "
        + (", ".join(f"{p} {v['side']}" for p, v in positions.items()) or "none"),
        f"  suspended pairs   {', '.join(sorted(state.get('suspended_pairs', ()))) or 'none'}"
        + ("  (portfolio trading suspended)" if state.get("portfolio_trading_suspended") else ""),
        f"  state file        {info.get('url')}: {size:,} bytes, generation "
        f"{info.get('generation')}, transforms {', '.join(info.get('transforms') or []) or 'none'}",
        f"  inspect it with   {_command()} show {info.get('url')}",
    ]
    print("\n".join(lines), file=out, flush=True)


if __name__ == "__main__":
    sys.exit(_worker_main())


def _command() -> str:
    """How to call the statevault command from here: by name if it is on PATH, else by path."""
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("statevault"):
        return "statevault"
    beside = Path(sys.executable).parent / "statevault"
    return str(beside) if beside.exists() else f"{sys.executable} -m statevault"

"""Running the demo: two child processes (the first killed after its last save), then the check.

``run_demo`` spawns ``python -m statevault.demo first``, which trades the first half of the
bars and kills itself, then ``... resume``, which rebuilds the trader from the saved state
alone; it compares what they left with ``simulate``. ``worker_main`` is the children's entry
point; ``Progress`` draws the bar.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import IO, Any

from ..errors import StateError
from ..trading import TradingStateManager
from .compare import diff_states
from .trader import DemoConfig, PairsTrader, require_pandas, simulate

__all__ = ["DEFAULT_URL", "Progress", "run_demo", "run_phase", "worker_main"]

#: Where ``statevault demo`` keeps its state unless told otherwise (git-ignored).
DEFAULT_URL = "./demo_state/trader.state"

#: Exit status of the first child when ``SIGKILL`` is not available (Windows).
_CRASH_STATUS = 86


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


def worker_main(argv: Sequence[str] | None = None) -> int:
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
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
    require_pandas()
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


def _command() -> str:
    """How to call the statevault command from here: by name if it is on PATH, else by path."""
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("statevault"):
        return "statevault"
    beside = Path(sys.executable).parent / "statevault"
    return str(beside) if beside.exists() else f"{sys.executable} -m statevault"

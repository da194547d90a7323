"""Every script in examples/ runs and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from statevault import TradingStateManager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEVAULT_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_mt5_style_trader_restores_its_state(tmp_path: Path) -> None:
    state_file = tmp_path / "mt5.state"
    proc = run_example(
        "mt5_style_trader.py", "--state-file", str(state_file), "--ticks", "20", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "restored state identical to the saved one" in proc.stdout
    assert proc.stderr == ""
    state = TradingStateManager(state_file).load_trading_state()
    assert set(state["pair_states"]) == {"EURUSD-GBPUSD", "AUDUSD-NZDUSD"}
    assert state["suspended_pairs"] == {"AUDUSD-NZDUSD"}
    assert len(state["pair_states"]["EURUSD-GBPUSD"]["price1"]) == 20

    # Run again on the same file: it starts over and succeeds again.
    again = run_example(
        "mt5_style_trader.py", "--state-file", str(state_file), "--ticks", "5", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr


def test_mt5_style_trader_default_location(tmp_path: Path) -> None:
    proc = run_example("mt5_style_trader.py", "--ticks", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo_state" / "mt5_trader.state").exists()


def test_every_example_is_tested() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["mt5_style_trader.py"], "add a test for the new example"

"""The command line's JSON on every command, STATEVAULT_URL / STATEVAULT_KEY_FILE, key ids,
`diff`, `rotate-keys` and progress on a terminal (issue 13's CLI bullets)."""

from __future__ import annotations

import base64
import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from statevault import Keyring, StateManager, TradingStateManager, generate_key, open_state
from statevault.cli import main
from statevault.cli.progress import Progress
from statevault.errors import InvalidKeyError

ENV = ("STATEVAULT_KEY", "STATEVAULT_KEY_FILE", "STATEVAULT_STORAGE_OPTIONS", "STATEVAULT_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert err == "", err
    return json.loads(out)


def prices(n: int) -> pd.Series:
    idx = pd.date_range("2024-07-01", periods=n, freq="min", tz="UTC")
    return pd.Series(np.arange(float(n)), index=idx, name="EURUSD")


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A trading state saved three times: a price series growing by one row per save."""
    path = tmp_path / "trader.state"
    mgr = TradingStateManager(path, spool_dir=False)
    for g in range(3):
        mgr.save_trading(
            {"A-B": {"side": "long"}} if g < 2 else {},
            {"A-B": {"price1": prices(5 + g), "peak": 1.0 + g}},
            {"cash": 100.0 + g},
        )
    return path


# -- --json on every command ---------------------------------------------------------------


def test_every_command_takes_json() -> None:
    from statevault.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices: dict[str, Any] = sub.choices  # type: ignore[assignment]
    missing = [
        name
        for name, p in choices.items()
        if not any("--json" in a.option_strings for a in p._actions)
    ]
    assert missing == []


def test_verify_and_restore_json(capsys: pytest.CaptureFixture[str], history: Path) -> None:
    out = run_json(capsys, "verify", str(history))
    assert out == {
        "url": str(history),
        "ok": True,
        "format": "frame",
        "generation": 3,
        "sections": 2,
        "size": history.stat().st_size,
        "values": out["values"],
    }
    assert out["values"] > 5
    out = run_json(capsys, "restore", str(history), "1")
    assert out == {"url": str(history), "restored_version": 1, "generation": 4}
    restored = TradingStateManager(history, spool_dir=False).load()
    assert restored["cash"] == 100.0


def test_errors_stay_on_stderr_with_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "verify", str(tmp_path / "none.state"), "--json")
    assert (code, out) == (3, "")
    assert err.startswith("statevault verify: ")


# -- environment ---------------------------------------------------------------------------


def test_no_url_argument_uses_statevault_url(
    capsys: pytest.CaptureFixture[str], history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, "info")
    assert code == 2
    assert "STATEVAULT_URL" in err
    monkeypatch.setenv("STATEVAULT_URL", str(history))
    assert run_json(capsys, "info")["generation"] == 3
    assert run_json(capsys, "verify")["generation"] == 3
    assert [v["generation"] for v in run_json(capsys, "history")["versions"]] == [3, 2, 1]
    assert run_json(capsys, "restore", "2")["generation"] == 4  # VERSION alone: URL from env
    assert run_json(capsys, "diff", "2", "4")["counts"] == {"added": 0, "removed": 0, "changed": 0}


def test_key_file_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key()
    key_file = tmp_path / "bot.key"
    key_file.write_text(f"# the bot's key\n{key}\n")
    path = tmp_path / "secret.state"
    StateManager(path, encryption_key=key, spool_dir=False).save({"cash": 5})
    code, _, err = run(capsys, "show", str(path))
    assert code == 5, err
    monkeypatch.setenv("STATEVAULT_KEY_FILE", str(key_file))
    assert run_json(capsys, "show", str(path)) == {"cash": 5}
    monkeypatch.setenv("STATEVAULT_URL", str(path))
    assert StateManager.from_env(spool_dir=False).load() == {"cash": 5}
    # Both sources set: which key would encrypt? Refused, naming both variables.
    monkeypatch.setenv("STATEVAULT_KEY", generate_key())
    code, _, err = run(capsys, "show")
    assert code == 2
    assert "STATEVAULT_KEY_FILE" in err
    with pytest.raises(InvalidKeyError, match="unset one"):
        StateManager.from_env()
    monkeypatch.delenv("STATEVAULT_KEY")
    monkeypatch.setenv("STATEVAULT_KEY_FILE", str(tmp_path / "missing.key"))
    code, _, err = run(capsys, "show")
    assert code == 5
    assert "missing.key does not exist" in err


def test_info_shows_the_key_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "secret.state"
    mgr = StateManager(path, encryption_key=key, spool_dir=False)
    mgr.save({"cash": 5})
    key_id = Keyring([key]).key_ids[0]
    code, out, _ = run(capsys, "info", str(path))  # no key needed: the id is in clear
    assert code == 0
    assert f"key id:        {key_id}" in out.splitlines()
    assert run_json(capsys, "info", str(path))["key_ids"] == {"encryption": key_id}
    signed = tmp_path / "signed.state"
    StateManager(signed, signing_key=generate_key(), spool_dir=False).save({"cash": 5})
    assert set(run_json(capsys, "info", str(signed))["key_ids"]) == {"signing"}
    plain = tmp_path / "plain.state"
    StateManager(plain, spool_dir=False).save({"cash": 5})
    assert run_json(capsys, "info", str(plain))["key_ids"] == {}


# -- diff ----------------------------------------------------------------------------------


def test_diff_previous_version_against_the_current_state(
    capsys: pytest.CaptureFixture[str], history: Path
) -> None:
    code, out, err = run(capsys, "diff", str(history))
    assert code == 0, err
    assert out.splitlines() == [
        f"# {history}: version 2 -> current (generation 3)",
        "0 added, 1 removed, 3 changed",
        "- state['active_positions']['A-B']: dict, 1 item",
        "~ state['pair_states']['A-B']['price1']: Series, 6 -> 7 rows",
        "    appended 1 row: 2024-07-01 00:06:00+00:00  (Timestamp)",
        "~ state['pair_states']['A-B']['peak']: 2.0 -> 3.0",
        "~ state['cash']: 101.0 -> 102.0",
    ]
    out = run_json(capsys, "diff", str(history), "1")
    assert (out["from"], out["to"]) == (
        {"version": 1, "generation": 1},
        {"version": None, "generation": 3},
    )
    price = next(c for c in out["changes"] if c["keys"][-1] == "price1")
    assert price["table"]["appended"] == {
        "count": 2,
        "labels": ["2024-07-01T00:05:00+00:00", "2024-07-01T00:06:00+00:00"],
    }
    assert price["table"]["shape"] == {"before": [5], "after": [7]}
    out = run_json(capsys, "diff", str(history), "2", "1")
    assert out["counts"] == {"added": 0, "removed": 0, "changed": 3}


def test_diff_exit_statuses(
    capsys: pytest.CaptureFixture[str], history: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "diff", str(history), "9")
    assert code == 3
    assert "statevault history" in err
    code, _, err = run(capsys, "diff", str(history), "1", "2", "3")
    assert code == 2
    assert "at most two versions" in err
    code, _, err = run(capsys, "diff", str(tmp_path / "none.state"))
    assert code == 3
    once = tmp_path / "once.state"
    StateManager(once, keep_versions=0, spool_dir=False).save({"a": 1})
    code, _, err = run(capsys, "diff", str(once), "--keep-versions", "1")
    assert code == 3
    assert "no retained version older" in err


def test_diff_of_frames_lists_bounded_cells(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "frames.state"
    mgr = StateManager(path, spool_dir=False)
    frame = pd.DataFrame({"x": np.arange(50.0)}, index=pd.RangeIndex(50))
    mgr.save({"f": frame, "a": np.zeros(4)})
    edited = frame.copy()
    edited["x"] += 1
    mgr.save({"f": edited, "a": np.ones(4)})
    code, out, _ = run(capsys, "diff", str(path), "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert "~ state['f']: DataFrame, 50 rows" in lines
    assert "    changed 50 cells:" in lines
    assert "      [0, 'x']: 0.0 -> 1.0" in lines
    assert "      ... 48 more" in lines
    assert "~ state['a']: ndarray (4,)" in lines


# -- rotate-keys ---------------------------------------------------------------------------


def test_rotate_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "secret.state"
    mgr = StateManager(path, encryption_key=old, spool_dir=False)
    for i in range(3):
        mgr.save({"i": i})
    code, _, err = run(capsys, "rotate-keys", str(path))
    assert code == 2  # no key given: nothing to rotate to
    assert "--key NEW --key OLD" in err
    out = run_json(capsys, "rotate-keys", str(path), "--key", new, "--key", old)
    new_id = Keyring([new]).key_ids[0]
    assert out["key_id"] == new_id
    assert out["generation"] == 4
    assert [v["generation"] for v in out["versions"]] == [4, 3, 2, 1]
    assert {v["key_id"] for v in out["versions"]} == {new_id}
    assert out["not_rotated"] == []
    view = open_state(path, encryption_key=new)
    assert [view.load(g).state for g in (1, 2, 3, 4)] == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 2}]
    plain = tmp_path / "plain.state"
    StateManager(plain, spool_dir=False).save({"a": 1})
    code, _, err = run(capsys, "rotate-keys", str(plain))
    assert code == 2
    assert "--key NEW --key OLD" in err


# -- progress ------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_and_never_with_json() -> None:
    tty, pipe = Terminal(), io.StringIO()
    with Progress.for_command("restore", json_output=False, stream=tty) as p:
        p.step("reading", 1, 2)
    assert "\rstatevault restore: [1/2] reading  " in tty.getvalue()
    assert tty.getvalue().endswith("\r")  # the line is erased at the end
    for stream, json_output in ((pipe, False), (Terminal(), True)):
        with Progress.for_command("restore", json_output=json_output, stream=stream) as p:
            p.step("reading", 1, 2)
        assert stream.getvalue() == ""


def test_restore_draws_progress_on_a_real_terminal(history: Path) -> None:
    """A real pseudo-terminal as stderr: the steps are drawn there; stdout keeps its line."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "statevault", "restore", str(history), "1"],
        stdout=subprocess.PIPE,
        stderr=secondary,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        drawn += chunk
    os.close(primary)
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("restored version 1 of ")
    assert b"statevault restore: [1/2] reading and decoding version 1" in drawn
    assert b"[2/2] saving it as a new generation" in drawn


def test_demo_json_is_one_summary_object(capsys: pytest.CaptureFixture[str]) -> None:
    url = "memory://clix-demo-json/trader.state"
    out = run_json(capsys, "demo", "--url", url, "--bars", "20", "--pairs", "1", "--json")
    assert out == {
        "url": out["url"],
        "status": 0,
        "resumed_exactly": True,
        "generation": 20,
        "size": out["size"],
        "bars": 20,
        "pairs": 1,
        "seed": 5,
    }
    assert out["url"].endswith("clix-demo-json/trader.state")


def test_a_key_that_starts_with_a_dash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """1 Fernet key in 64 starts with '-': ``--key -...`` must not be taken for an option."""
    key = base64.urlsafe_b64encode(b"\xf8" + bytes(range(31))).decode()
    assert key.startswith("-")
    path = tmp_path / "secret.state"
    StateManager(path, encryption_key=key, spool_dir=False).save({"cash": 5})
    assert run_json(capsys, "show", str(path), "--key", generate_key(), "--key", key) == {"cash": 5}
    with pytest.raises(SystemExit) as exit_:
        main(["show", str(path), "--key"])
    assert exit_.value.code == 2
    assert "expected one argument" in capsys.readouterr().err


def test_rotate_keys_names_a_version_it_could_not_rewrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "secret.state"
    mgr = StateManager(path, encryption_key=old, spool_dir=False)
    for i in range(3):
        mgr.save({"i": i, "pad": "x" * 200})
    damaged = next(p for p in (path.parent / "secret.state.versions").iterdir() if p.name == "1")
    data = bytearray(damaged.read_bytes())
    data[-20] ^= 0xFF  # in the last section's data: the header still reads, the data does not
    damaged.write_bytes(bytes(data))
    assert open_state(path, encryption_key=old).header(1).generation == 1
    code, out, err = run(capsys, "rotate-keys", str(path), "--key", new, "--key", old, "--json")
    assert code == 1
    assert json.loads(out)["not_rotated"] == [1]
    assert "versions 1 (key id" in err
    assert "still under an old key" in err


def test_rotate_keys_shows_each_retained_version_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "secret.state"
    mgr = StateManager(path, encryption_key=old, spool_dir=False)
    for i in range(3):
        mgr.save({"i": i})
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(["rotate-keys", str(path), "--key", new, "--key", old])
    assert code == 0
    assert "rewritten" in capsys.readouterr().out
    drawn = terminal.getvalue()
    assert "statevault rotate-keys: re-encrypting the current state (3 retained" in drawn
    total = len(StateManager(path, encryption_key=new, spool_dir=False).list_versions())
    steps = [f"[{k}/{total}] re-encrypting the retained versions" for k in range(1, total + 1)]
    positions = [drawn.find(step) for step in steps]
    assert -1 not in positions, drawn
    assert positions == sorted(positions)  # in order, one per version
    assert drawn.endswith("\r")  # erased at the end

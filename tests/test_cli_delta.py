"""``statevault compact`` / ``export`` and their Python API (issue 12): real files, memory://,
a subprocess run, and each failure path (missing state, wrong key, OUT exists, a concurrent
writer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from statevault import (
    ConflictError,
    MissingKeyError,
    StateManager,
    StateNotFoundError,
    TargetExistsError,
    generate_key,
    open_state,
)
from statevault.cli import archive as cli_archive
from statevault.cli import main
from statevault.cli.progress import Progress
from statevault.delta.compact import compact_state, export_state
from statevault.frame import MANIFEST_VERSION, PLAIN_VERSION

ENV = ("STATEVAULT_KEY", "STATEVAULT_KEY_FILE", "STATEVAULT_STORAGE_OPTIONS", "STATEVAULT_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def ticked(url: str | Path, ticks: int = 6, **options: Any) -> tuple[StateManager, dict[str, Any]]:
    """A state saved ``ticks + 1`` times, a large array growing each time (several packs)."""
    mgr = StateManager(url, spool_dir=False, **options)
    bars = np.arange(20_000, dtype=np.float64)
    state: dict[str, Any] = {}
    for i in range(ticks + 1):
        bars = np.append(bars, float(i))
        state = {"bars": bars, "tick": i, "other": np.full(9_000, i, dtype=np.int64)}
        mgr.save(state)
    return mgr, state


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k, value in a.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == b[k].dtype
            assert np.array_equal(value, b[k])
        else:
            assert value == b[k]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the Python API ---------------------------------------------------------------------


@pytest.mark.parametrize("where", ["file", "memory"])
def test_compact_state_leaves_one_live_pack(tmp_path: Path, where: str) -> None:
    url = str(tmp_path / "s.state") if where == "file" else "memory://cli-delta-compact/s.state"
    mgr, state = ticked(url)
    before = mgr.get_state_info()["delta"]
    assert before["packs"] > 1
    generation = compact_state(mgr)
    after = StateManager(url, spool_dir=False).get_state_info()
    assert after["generation"] == generation
    assert after["format_version"] == MANIFEST_VERSION
    assert after["delta"]["packs"] == 1
    assert after["delta"]["live_fraction"] == 1.0
    assert after["delta"]["retired_packs"] >= before["packs"]  # the old ones go to GC
    same(StateManager(url, spool_dir=False).load(), state)
    # Retained versions still load (their packs are retired, not deleted).
    for v in mgr.list_versions():
        mgr.load(v["generation"])
    # The manager keeps delta-saving from the compacted HEAD.
    state["tick"] = 99
    mgr.save(state)
    same(StateManager(url, spool_dir=False).load(), state)


def test_compact_state_loses_to_a_concurrent_writer(tmp_path: Path) -> None:
    url = tmp_path / "s.state"
    mgr, _ = ticked(url)
    other = StateManager(url, spool_dir=False)
    other.load()

    def between(step: str, done: int, total: int) -> None:
        if done == 2:  # loaded, not yet saved: another writer saves now
            other.save({"theirs": 1})

    with pytest.raises(ConflictError):
        compact_state(mgr, progress=between)
    assert StateManager(url, spool_dir=False).load() == {"theirs": 1}
    assert mgr.layers.commit.delta is not None
    assert not mgr.layers.commit.delta.force_full


def test_compact_state_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(StateNotFoundError):
        compact_state(StateManager(tmp_path / "none.state", spool_dir=False))


def test_export_state_is_one_plain_frame(tmp_path: Path) -> None:
    key = generate_key()
    mgr, state = ticked(tmp_path / "s.state", encryption_key=key)
    out = tmp_path / "out" / "copy.state"
    out.parent.mkdir()
    done = export_state(mgr, out)
    assert sorted(os.listdir(out.parent)) == ["copy.state"]  # no lock file, no sidecar
    assert done.size == out.stat().st_size
    assert done.generation == mgr.get_state_info()["generation"]
    copy = StateManager(out, spool_dir=False, delta=False, encryption_key=key, keep_versions=0)
    assert copy.get_state_info()["format_version"] == PLAIN_VERSION
    same(copy.load(), state)
    with pytest.raises(MissingKeyError):  # encrypted like the source
        StateManager(out, spool_dir=False).load()
    # An existing OUT is refused, and left as it was; force replaces it.
    original = out.read_bytes()
    mgr.save({**state, "tick": 1000})
    with pytest.raises(TargetExistsError):
        export_state(mgr, out)
    assert out.read_bytes() == original
    export_state(mgr, out, force=True)
    assert copy.load()["tick"] == 1000
    assert sorted(os.listdir(out.parent)) == ["copy.state"]


def test_export_state_to_memory_and_from_memory(tmp_path: Path) -> None:
    mgr, state = ticked("memory://cli-delta-export/s.state")
    export_state(mgr, "memory://cli-delta-export/copy.state")
    same(StateManager("memory://cli-delta-export/copy.state", delta=False).load(), state)
    export_state(mgr, tmp_path / "local.state")
    same(StateManager(tmp_path / "local.state", delta=False).load(), state)


# -- the command line -------------------------------------------------------------------


def test_compact_and_export_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = tmp_path / "s.state"
    _, state = ticked(url)
    code, out, err = run(capsys, "compact", str(url), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["after"]["packs"] == 1
    assert result["before"]["packs"] > 1
    assert result["generation"] == open_state(str(url)).info()["generation"]
    code, out, err = run(capsys, "compact", str(url))
    assert code == 0
    assert out.startswith(f"compacted {url} as generation ")
    assert "1 pack" in out

    target = tmp_path / "copy.state"
    code, out, err = run(capsys, "export", str(url), str(target), "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["format_version"] == PLAIN_VERSION
    code, out, err = run(capsys, "verify", str(target), "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True
    code, out, err = run(capsys, "export", str(url), str(target))
    assert code == 13
    assert "already exists" in err
    assert "--force" in err
    code, out, err = run(capsys, "export", str(url), str(target), "--force")
    assert code == 0
    assert out.startswith(f"exported {url} (generation ")
    same(StateManager(target, delta=False, spool_dir=False).load(), state)


def test_compact_and_export_failures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "none.state")
    assert run(capsys, "compact", missing)[0] == 3
    assert run(capsys, "export", missing, str(tmp_path / "o.state"))[0] == 3
    assert not (tmp_path / "o.state").exists()
    key, wrong = generate_key(), generate_key()
    url = str(tmp_path / "secret.state")
    ticked(url, 2, encryption_key=key)
    before = Path(url).read_bytes()
    for argv in (["compact", url], ["export", url, str(tmp_path / "o.state")]):
        code, _, err = run(capsys, *argv, "--key", wrong)
        assert code == 6, err
        code, _, err = run(capsys, *argv)
        assert code == 5, err
    assert Path(url).read_bytes() == before
    assert not (tmp_path / "o.state").exists()
    # With the key both work; the export stays encrypted.
    assert run(capsys, "compact", url, "--key", key)[0] == 0
    assert run(capsys, "export", url, str(tmp_path / "o.state"), "--key", key)[0] == 0
    assert run(capsys, "verify", str(tmp_path / "o.state"))[0] == 5
    assert run(capsys, "verify", str(tmp_path / "o.state"), "--key", key)[0] == 0


class _Racing(Progress):
    """A progress display during which another writer saves (between load and save)."""

    url: Path

    def step(self, text: str, done: int | None = None, total: int | None = None) -> None:
        if done == 2:
            StateManager(self.url, spool_dir=False).save({"theirs": 2})
        super().step(text, done, total)


def test_compact_command_with_a_concurrent_writer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = tmp_path / "s.state"
    ticked(url)
    _Racing.url = url
    monkeypatch.setattr(cli_archive, "Progress", _Racing)
    code, out, err = run(capsys, "compact", str(url))
    assert code == 12, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("statevault compact: ")
    assert StateManager(url, spool_dir=False).load() == {"theirs": 2}


def test_subprocess_with_the_environment(tmp_path: Path) -> None:
    """``python -m statevault`` in a child process, the URL and key from the environment."""
    key = generate_key()
    url = tmp_path / "s.state"
    _, state = ticked(url, 3, encryption_key=key)
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env.update({"STATEVAULT_URL": str(url), "STATEVAULT_KEY": key})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "statevault", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    done = cli("compact", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["after"]["packs"] == 1
    target = tmp_path / "archive" / "s.copy"
    target.parent.mkdir()
    done = cli("export", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress drawn when stderr is not a terminal
    copy = StateManager(target, encryption_key=key, delta=False)
    assert copy.get_state_info()["format_version"] == PLAIN_VERSION
    same(copy.load(), state)

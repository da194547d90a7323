"""The ``statevault`` command, run as a real subprocess: each command and each error status."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from statevault import StateManager, TradingStateManager, Transform, generate_key
from statevault.cli import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("sv_cli_gen_state", ROOT / "bench" / "gen_state.py")
assert _spec is not None
assert _spec.loader is not None
gen_state = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_state)

_ENV_VARS = ("STATEVAULT_KEY", "STATEVAULT_STORAGE_OPTIONS", "STATEVAULT_URL")


@dataclass
class Run:
    code: int
    out: str
    err: str


def statevault(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run ``python -m statevault ARGS`` with a clean statevault environment."""
    full_env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "statevault", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: Run, code: int, *needles: str) -> None:
    assert run.code == code, (run.code, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert "Traceback" not in run.err
    assert lines[0].startswith("statevault ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def trading_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "trader.state"
    TradingStateManager(path).save_trading(*gen_state.make_trading_parts("S", seed=9))
    return path


@pytest.fixture(scope="module")
def encrypted_state(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    key = generate_key()
    path = tmp_path_factory.mktemp("cli") / "secret.state"
    TradingStateManager(path, encryption_key=key).save_trading(
        {"A-B": {"side": "long"}}, {"A-B": {"z": 1.25}}, {"portfolio_peak_value": 7.0}
    )
    return path, key


# -- info -----------------------------------------------------------------------------------


def test_info_describes_the_header(trading_state: Path) -> None:
    run = statevault("info", str(trading_state))
    assert run.code == 0, run.err
    assert "statevault frame, format version" in run.out
    assert "kind:          trading" in run.out
    assert "generation:    1" in run.out
    assert "transforms:    zstd" in run.out
    assert "sections:      11" in run.out  # the root and one per pair
    assert "last modified:" in run.out

    data = json.loads(statevault("info", str(trading_state), "--json").out)
    assert data["generation"] == 1
    assert data["sections"] == 11
    assert data["transforms"] == ["zstd"]
    assert data["size"] == trading_state.stat().st_size


def test_info_of_an_encrypted_state_needs_no_key(encrypted_state: tuple[Path, str]) -> None:
    path, _key = encrypted_state
    run = statevault("info", str(path))
    assert run.code == 0, run.err
    assert "zstd, fernet  (encrypted)" in run.out


def test_info_of_legacy_json(tmp_path: Path) -> None:
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps({"active_positions": {}, "pair_states": {}}))
    run = statevault("info", str(path))
    assert run.code == 0, run.err
    assert "plain JSON" in run.out
    run = statevault("verify", str(path))
    assert run.code == 0, run.err
    assert "plain JSON" in run.out
    assert "no checksums" in run.out
    (tmp_path / "list.json").write_text("[1, 2]")
    assert_one_line_error(statevault("verify", str(tmp_path / "list.json")), 4)


# -- show -----------------------------------------------------------------------------------


def test_show_for_a_person(trading_state: Path) -> None:
    run = statevault("show", str(trading_state))
    assert run.code == 0, run.err
    assert "(statevault frame v" in run.out.splitlines()[0]
    assert "active_positions: dict, 2 items" in run.out
    assert "  EURUSD-GBPUSD: dict, 6 items" in run.out
    assert "price1: Series 'EURUSD' float64, 500 rows, 2024-06-28 12:40:00+00:00 .. " in run.out
    assert "stats: DataFrame 5 rows x 5 cols (spread_mean," in run.out
    assert "suspended_pairs: {'" in run.out
    assert "cash: 100000.00  (Decimal)" in run.out


def test_show_json_for_machines(trading_state: Path) -> None:
    run = statevault("show", str(trading_state), "--json")
    assert run.code == 0, run.err
    data = json.loads(run.out)
    price = data["pair_states"]["EURUSD-GBPUSD"]["price1"]
    assert price["type"] == "Series"
    assert price["shape"] == [500]
    assert price["dtype"] == "float64"
    assert price["start"] == "2024-06-28T12:40:00+00:00"
    assert price["end"] == "2024-06-28T20:59:00+00:00"
    assert len(price["head"]) == 5
    stats = data["pair_states"]["EURUSD-GBPUSD"]["stats"]
    assert stats["type"] == "DataFrame"
    assert stats["shape"] == [5, 5]
    assert data["cash"] == "100000.00"
    assert isinstance(data["suspended_pairs"], list)
    position = next(iter(data["active_positions"].values()))
    assert position["entry_time"].endswith("+00:00")


def test_show_one_section_and_one_pair(trading_state: Path) -> None:
    run = statevault("show", str(trading_state), "--section", "portfolio_peak_value", "--json")
    assert run.code == 0, run.err
    assert isinstance(json.loads(run.out), float)

    run = statevault("show", str(trading_state), "--section", "EURUSD-AUDUSD", "--json")
    assert run.code == 0, run.err
    assert set(json.loads(run.out)) == {
        "price1",
        "price2",
        "spread",
        "stats",
        "last_update",
        "hedge_ratio",
    }

    run = statevault("show", str(trading_state), "--section", "EURUSD-AUDUSD")
    assert run.code == 0, run.err
    assert run.out.startswith("EURUSD-AUDUSD: dict, 6 items")
    assert "price2: Series 'AUDUSD' float64, 500 rows" in run.out


def test_show_unknown_section_lists_what_there_is(trading_state: Path) -> None:
    run = statevault("show", str(trading_state), "--section", "nope")
    assert_one_line_error(run, 2, "no section 'nope'", "'active_positions'", "'EURUSD-GBPUSD'")


def test_show_legacy_json_restores_what_it_can(tmp_path: Path) -> None:
    path = tmp_path / "legacy.json"
    path.write_text(
        json.dumps(
            {
                "active_positions": {"A-B": {"entry_time": "2024-03-04T13:02:30+00:00"}},
                "pair_states": {
                    "A-B": {
                        "price1": {
                            "index": ["2024-03-04T13:00:00+00:00", "2024-03-04T13:01:00+00:00"],
                            "values": [1.5, 1.25],
                        }
                    }
                },
            }
        )
    )
    before = path.read_bytes()
    run = statevault("show", str(path))
    assert run.code == 0, run.err
    assert "(plain JSON (trading state))" in run.out
    assert "entry_time: 2024-03-04 13:02:30+00:00  (datetime)" in run.out
    assert "price1: Series float64, 2 rows" in run.out
    run = statevault("show", str(path), "--section", "A-B", "--json")
    assert json.loads(run.out)["price1"]["type"] == "Series"
    assert path.read_bytes() == before


# -- verify ---------------------------------------------------------------------------------


def test_verify_sound_state(trading_state: Path) -> None:
    run = statevault("verify", str(trading_state))
    assert run.code == 0, run.err
    assert run.out.startswith("OK ")
    assert "every checksum matches" in run.out


def test_verify_finds_a_flipped_byte(trading_state: Path, tmp_path: Path) -> None:
    data = bytearray(trading_state.read_bytes())
    data[len(data) * 2 // 3] ^= 0x40
    damaged = tmp_path / "damaged.state"
    damaged.write_bytes(bytes(data))
    assert_one_line_error(statevault("verify", str(damaged)), 7)
    # info reads only the header, which is intact
    assert statevault("info", str(damaged)).code == 0


def test_verify_finds_a_truncated_file(trading_state: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.state"
    cut.write_bytes(trading_state.read_bytes()[:-100])
    assert_one_line_error(statevault("verify", str(cut)), 7)


# -- errors ---------------------------------------------------------------------------------


def test_missing_state(tmp_path: Path) -> None:
    for command in ("info", "show", "verify"):
        assert_one_line_error(statevault(command, str(tmp_path / "none.state")), 3, "none.state")


def test_not_a_statevault_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 JFIF" + bytes(200))
    for command in ("info", "show", "verify"):
        assert_one_line_error(statevault(command, str(path)), 4)


def test_encrypted_without_a_key_and_with_the_wrong_key(
    encrypted_state: tuple[Path, str], tmp_path: Path
) -> None:
    path, key = encrypted_state
    assert_one_line_error(statevault("show", str(path)), 5, "--key")
    assert_one_line_error(statevault("verify", str(path), "--key", generate_key()), 6, "--key")
    # The right key, three ways: flag, file, environment; a rotation list with it works too.
    assert statevault("verify", str(path), "--key", key).code == 0
    key_file = tmp_path / "state.key"
    key_file.write_text(key + "\n")
    assert statevault("show", str(path), "--key-file", str(key_file), "--json").code == 0
    run = statevault("show", str(path), "--json", env={"STATEVAULT_KEY": key})
    assert json.loads(run.out)["pair_states"] == {"A-B": {"z": 1.25}}
    assert statevault("verify", str(path), "--key", generate_key(), "--key", key).code == 0


def test_bad_key_and_bad_storage_options_are_usage_errors(trading_state: Path) -> None:
    assert_one_line_error(statevault("info", str(trading_state), "--key", "not-a-key"), 2)
    run = statevault("info", str(trading_state), "--storage-options", "{nope")
    assert_one_line_error(run, 2, "--storage-options")
    run = statevault("info", str(trading_state), env={"STATEVAULT_STORAGE_OPTIONS": "[1]"})
    assert_one_line_error(run, 2, "STATEVAULT_STORAGE_OPTIONS")
    run = statevault("frobnicate")
    assert run.code == 2
    assert "Traceback" not in run.err


def test_newer_format_and_unknown_transform(trading_state: Path, tmp_path: Path) -> None:
    data = bytearray(trading_state.read_bytes())
    struct.pack_into("<I", data, 8, 99)  # the format version, after the 8 magic bytes
    struct.pack_into("<I", data, 20, zlib.crc32(data[:20]))  # the prefix checksum
    newer = tmp_path / "newer.state"
    newer.write_bytes(bytes(data))
    for command in ("info", "verify"):
        assert_one_line_error(statevault(command, str(newer)), 8, "newer")

    reverse = Transform("reverse", encode=lambda b: bytes(b)[::-1], decode=lambda b: bytes(b)[::-1])
    path = tmp_path / "plugin.state"
    StateManager(path, transforms=[reverse]).save({"a": 1})
    assert_one_line_error(statevault("verify", str(path)), 8, "reverse")


class Strategy:
    """A user type the command line process has not registered."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_a_type_the_cli_cannot_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "custom.state"
    sm = StateManager(path)
    sm.register_type(Strategy, "tests.Strategy", encode=lambda s: s.name, decode=Strategy)
    sm.save({"strategy": Strategy("meanrev")})
    assert_one_line_error(statevault("verify", str(path)), 9)
    assert statevault("info", str(path)).code == 0


def test_storage_failure(tmp_path: Path) -> None:
    # A directory where the state should be: the storage cannot read it as an object.
    (tmp_path / "dir.state").mkdir()
    assert_one_line_error(statevault("show", str(tmp_path / "dir.state")), 10)


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    run = statevault("info", str(tmp_path / "none.state"), "--debug")
    assert run.code == 3
    assert "Traceback" in run.err


def test_exit_codes_are_distinct_and_documented() -> None:
    assert len(EXIT_CODES) == len(set(EXIT_CODES))
    doc = (ROOT / "docs" / "cli.md").read_text()
    for code in EXIT_CODES:
        assert f"| {code} |" in doc


def test_installed_script_and_version() -> None:
    script = Path(sys.executable).with_name("statevault")
    if not script.exists():
        pytest.skip("the statevault script is not installed in this environment")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("statevault ")

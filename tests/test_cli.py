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
from typing import Any

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


def test_storage_options_on_a_local_path_say_what_to_do(trading_state: Path) -> None:
    """Options a local path cannot use are a configuration error, not an unexpected one."""
    for run in (
        statevault("info", str(trading_state), "--storage-options", '{"anon": true}'),
        statevault("show", str(trading_state), env={"STATEVAULT_STORAGE_OPTIONS": '{"a": 1}'}),
    ):
        assert_one_line_error(run, 10, "no meaning for a local path", "STATEVAULT_STORAGE_OPTIONS")
        assert "unexpected error" not in run.err


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


# -- history, restore, show --version -------------------------------------------------------


def saved_generations(path: Path, count: int, **options: Any) -> StateManager:
    """Save ``{"n": g, "tag": "x" * g}`` as generations 1..count; return the writer."""
    sm = StateManager(path, **options)
    for n in range(1, count + 1):
        sm.save({"n": n, "tag": "x" * n})
    return sm


def test_history_lists_the_retained_versions(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    saved_generations(path, 5)  # the default keep_versions=3: generations 2..5 are kept
    run = statevault("history", str(path))
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == f"# {path}: 4 retained versions (keep_versions=3)"
    assert lines[1].split() == ["generation", "created", "(UTC)", "size"]
    assert [line.split()[0] for line in lines[2:6]] == ["5", "4", "3", "2"]
    assert lines[2].endswith(" bytes  current")
    assert lines[3].endswith(" bytes")
    assert lines[-1] == f"restore one with: statevault restore {path} GENERATION"

    data = json.loads(statevault("history", str(path), "--json").out)
    assert data["keep_versions"] == 3
    assert data["current_generation"] == 5
    assert [v["generation"] for v in data["versions"]] == [5, 4, 3, 2]
    assert [v["current"] for v in data["versions"]] == [True, False, False, False]
    assert data["versions"][0]["created"].endswith("+00:00")
    assert data["versions"][0]["size"] > 0


def test_history_without_versions_and_without_a_state(tmp_path: Path) -> None:
    path = tmp_path / "plain.state"
    StateManager(path, keep_versions=0).save({"n": 1})
    run = statevault("history", str(path))
    assert run.code == 0, run.err
    assert "no retained versions" in run.out
    assert json.loads(statevault("history", str(path), "--json").out)["versions"] == []
    run = statevault("restore", str(path), "1")
    assert_one_line_error(run, 3, "not retained (retained: none)", "statevault history")

    missing = str(tmp_path / "nothing.state")
    for args in (
        ["history", missing],
        ["restore", missing, "1"],
        ["show", missing, "--version", "1"],
    ):
        assert_one_line_error(statevault(*args), 3, "No state is stored", "nothing.state")


def test_restore_makes_a_version_current_as_a_new_save(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    saved_generations(path, 5)
    run = statevault("restore", str(path), "3")
    assert run.code == 0, run.err
    assert run.out.strip() == f"restored version 3 of {path} as generation 6"
    assert StateManager(path).load() == {"n": 3, "tag": "xxx"}
    info = json.loads(statevault("info", str(path), "--json").out)
    assert (info["generation"], info["kind"], info["transforms"]) == (6, "state", ["zstd"])
    # The restore is itself a retained version: it can be undone the same way.
    data = json.loads(statevault("history", str(path), "--json").out)
    assert [v["generation"] for v in data["versions"]] == [6, 5, 4, 3]
    assert statevault("restore", str(path), "5").code == 0
    assert StateManager(path).load() == {"n": 5, "tag": "xxxxx"}


def test_restore_keeps_kind_schema_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "trader.state"
    sm = TradingStateManager(path, schema_version=2, compression=None)
    sm.save_trading({"A-B": {"side": "long"}}, {"A-B": {"z": 1.0}, "C-D": {"z": 2.0}})
    sm.save_trading({}, {"A-B": {"z": 3.0}})
    assert statevault("restore", str(path), "1").code == 0
    info = json.loads(statevault("info", str(path), "--json").out)
    assert (info["kind"], info["schema_version"], info["transforms"]) == ("trading", 2, [])
    assert info["sections"] == 3  # the root and one per pair, as the trading manager writes
    # Schema 2 stays schema 2: the application reads it without any migration registered.
    state = TradingStateManager(path, schema_version=2).load()
    assert state["pair_states"] == {"A-B": {"z": 1.0}, "C-D": {"z": 2.0}}


def test_restore_and_show_an_unknown_version(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    saved_generations(path, 5)
    for version in ("1", "9"):  # pruned, and never written
        run = statevault("restore", str(path), version)
        assert_one_line_error(
            run, 3, f"version {version} ", "retained: 5, 4, 3, 2", f"statevault history {path}"
        )
    run = statevault("show", str(path), "--version", "1")
    assert_one_line_error(run, 3, "not retained", "statevault history")
    assert StateManager(path).get_state_info()["generation"] == 5  # nothing was written
    for bad in ("0", "three"):
        run = statevault("restore", str(path), bad)
        assert run.code == 2
        assert "Traceback" not in run.err
        assert "VERSION" in run.err
    assert statevault("show", str(path), "--version", "x").code == 2


def test_show_a_retained_version(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    saved_generations(path, 5)
    run = statevault("show", str(path), "--version", "3")
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        f"# {path}  (retained version 3, statevault frame v2)",  # a delta manifest
        "n: 3",
        "tag: 'xxx'",
    ]
    run = statevault("show", str(path), "--version", "2", "--json")
    assert json.loads(run.out) == {"n": 2, "tag": "xx"}
    run = statevault("show", str(path), "--version", "4", "--section", "tag", "--json")
    assert json.loads(run.out) == "xxxx"
    run = statevault("show", str(path), "--version", "4", "--section", "tag")
    assert run.out.strip() == "tag: 'xxxx'"
    run = statevault("show", str(path), "--version", "4", "--section", "nope")
    assert_one_line_error(run, 2, "no section 'nope'", "'n', 'tag'")


def test_show_one_pair_of_a_retained_trading_version(tmp_path: Path) -> None:
    path = tmp_path / "trader.state"
    sm = TradingStateManager(path)
    sm.save_trading({}, {"A-B": {"z": 1.0}, "C-D": {"z": 2.0}})
    sm.save_trading({}, {"A-B": {"z": 3.0}})
    run = statevault("show", str(path), "--version", "1", "--section", "C-D", "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out) == {"z": 2.0}


def test_versions_of_an_encrypted_state(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "secret.state"
    saved_generations(path, 3, encryption_key=key)
    run = statevault("history", str(path))  # headers are not encrypted: no key needed
    assert run.code == 0, run.err
    assert_one_line_error(statevault("restore", str(path), "2"), 5, "--key")
    assert_one_line_error(statevault("show", str(path), "--version", "2"), 5, "--key")
    run = statevault("restore", str(path), "2", "--key", generate_key())
    assert_one_line_error(run, 6, "--key")
    run = statevault("restore", str(path), "2", env={"STATEVAULT_KEY": key})
    assert run.code == 0, run.err
    assert "as generation 4" in run.out
    assert StateManager(path, encryption_key=key).load() == {"n": 2, "tag": "xx"}
    info = json.loads(statevault("info", str(path), "--json").out)
    assert info["transforms"] == ["zstd", "fernet"]


def test_keep_versions_must_match_the_writer(tmp_path: Path) -> None:
    fewer = tmp_path / "fewer.state"
    saved_generations(fewer, 4, keep_versions=1)  # generation 3 sits in slot 1, not 3
    more = tmp_path / "more.state"
    saved_generations(more, 5, keep_versions=5)  # slots 0..3 look right; slot 4 does not
    for path, sign in ((fewer, "generation 3 is in slot 1"), (more, "slot 4 holds generation 4")):
        for args in (["history"], ["restore"]):
            extra = ["2"] if args == ["restore"] else []
            run = statevault(*args, str(path), *extra)
            assert_one_line_error(run, 2, "keep_versions other than 3", sign, "--keep-versions")
    assert StateManager(fewer, keep_versions=1).get_state_info()["generation"] == 4
    run = statevault("history", str(more), "--keep-versions", "5", "--json")
    assert [v["generation"] for v in json.loads(run.out)["versions"]] == [5, 4, 3, 2, 1]
    run = statevault("restore", str(fewer), "3", "--keep-versions", "1")
    assert run.code == 0, run.err
    run = statevault("history", str(fewer), "--keep-versions", "1", "--json")
    assert [v["generation"] for v in json.loads(run.out)["versions"]] == [5, 4]
    run = statevault("history", str(fewer), "--keep-versions", "0")
    assert run.code == 2
    assert "--keep-versions" in run.err


def test_history_storage_failure(tmp_path: Path) -> None:
    (tmp_path / "dir.state").mkdir()
    assert_one_line_error(statevault("history", str(tmp_path / "dir.state")), 10)

"""Hostile input and a hostile filesystem (issue 10, items 9-11): forged but CRC-valid headers,
documents nested deeper than statevault writes, symbolic links planted beside a state, and
file modes under any umask. Each forged input must end in a documented ``CorruptStateError``
(so ``load_state()`` falls back to a retained version), never in another exception."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from statevault import StateManager
from statevault.codec._payload import pack
from statevault.errors import CorruptStateError, StorageError, StoragePermissionError
from statevault.frame import build_frame, parse_header

from faults.frames import split

# -- item 9: forged headers ------------------------------------------------------------------


def _saved(tmp_path: Path) -> tuple[StateManager, Path]:
    path = tmp_path / "state.sv"
    sm = StateManager(path, compression=None, keep_versions=3, spool_dir=tmp_path / "spool")
    sm.save({"n": 1})
    sm.save({"n": 2})
    return sm, path


def _replace_file(path: Path, data: bytes) -> None:
    """Write like a forger would: a new file renamed over the state (the history's hard link
    keeps the old bytes, as after any real replace)."""
    tmp = path.with_name(path.name + ".forged")
    tmp.write_bytes(data)
    os.replace(tmp, path)


FORGERIES: dict[str, dict[str, Any]] = {
    "created 400 digits": {"created": 10**400},
    "created 1e300": {"created": 1e300},
    "created negative": {"created": -1.0},
    "generation 2**64-1": {"generation": 2**64 - 1},
    "generation 2**63": {"generation": 2**63},
    "generation 400 digits": {"generation": 10**400},
    "generation float": {"generation": 3.0},
    "created string": {"created": "yesterday"},
    "transforms not a list": {"transforms": {"name": "zstd"}},
    "meta a list": {"meta": []},
}


def _forged(path: Path, fields: dict[str, Any]) -> bytes:
    frame = split(path.read_bytes())
    frame.header.update(fields)
    return frame.assemble()


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_header_is_a_corrupt_state(tmp_path: Path, name: str) -> None:
    _sm, path = _saved(tmp_path)
    data = _forged(path, FORGERIES[name])
    with pytest.raises(CorruptStateError, match="header is malformed"):
        parse_header(data, total_size=len(data))
    _replace_file(path, data)
    fresh = StateManager(path, compression=None, keep_versions=3, spool_dir=tmp_path / "spool")
    with pytest.raises(CorruptStateError):
        fresh.load()
    info = fresh.get_state_info()
    assert info["readable"] is False
    assert "CorruptStateError" in info["error"]
    # The forgiving API falls back to the newest retained version ...
    assert fresh.load_state() == {"n": 2}
    assert fresh.last_load_source == "version 2"
    # ... and the bot's next save works (keeping the forged bytes aside).
    assert fresh.save_state({"n": 3})
    assert StateManager(path, spool_dir=tmp_path / "spool").load() == {"n": 3}
    assert (tmp_path / "state.sv.unreadable").read_bytes() == data


def test_the_largest_valid_generation_still_leaves_room(tmp_path: Path) -> None:
    chunks = build_frame([[b"x"]], transforms=[], generation=2**63 - 1)
    data = b"".join(bytes(c) for c in chunks)
    assert parse_header(data).generation == 2**63 - 1
    with pytest.raises(ValueError, match="generation"):
        build_frame([[b"x"]], transforms=[], generation=2**63)


def _deep_frame(depth: int, opener: str = '{"a":', closer: str = "}") -> bytes:
    text = '{"state":{"a":' + opener * depth + "1" + closer * depth + "}}"
    chunks = build_frame(
        [pack(text.encode(), [])],
        transforms=[],
        generation=9,
        meta={"kind": "state", "schema_version": 1},
    )
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize(
    ("depth", "opener", "closer"),
    [
        (500, '{"a":', "}"),
        (2_000, "[", "]"),
        (100_000, "[", "]"),
        (400, '{"$t":"tuple","v":[', "]}"),
    ],
)
def test_document_nested_deeper_than_written_is_corrupt(
    tmp_path: Path, depth: int, opener: str, closer: str
) -> None:
    _sm, path = _saved(tmp_path)
    _replace_file(path, _deep_frame(depth, opener, closer))
    fresh = StateManager(path, compression=None, keep_versions=3, spool_dir=tmp_path / "spool")
    with pytest.raises(CorruptStateError, match="nests"):
        fresh.load()
    assert fresh.load_state() == {"n": 2}
    assert fresh.last_load_source == "version 2"


def test_the_deepest_state_statevault_writes_still_loads(tmp_path: Path) -> None:
    from statevault.codec._core import MAX_DEPTH

    value: Any = 1
    for i in range(MAX_DEPTH - 10):
        value = {"k": value} if i % 2 else [value]
    sm = StateManager(tmp_path / "deep.sv", spool_dir=False, keep_versions=0)
    sm.save({"v": value})
    assert StateManager(tmp_path / "deep.sv", spool_dir=False).load() == {"v": value}


# -- item 10: planted symbolic links ---------------------------------------------------------


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file a planted link points at: it must never be written, truncated or created."""
    path = tmp_path / "elsewhere" / "victim"
    path.parent.mkdir()
    path.write_bytes(b"not statevault's")
    return path


def _untouched(victim: Path) -> bool:
    return victim.read_bytes() == b"not statevault's" and len(list(victim.parent.iterdir())) == 1


def test_symlinked_versions_directory_is_refused(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "s" / "state.sv"
    state.parent.mkdir()
    os.symlink(victim.parent, f"{state}.versions")
    sm = StateManager(state, keep_versions=3, spool_dir=tmp_path / "spool")
    assert sm.save({"n": 1}) == 1  # the save itself is fine; the history step is refused
    assert _untouched(victim)
    assert sm.list_versions() == []
    assert StateManager(state, spool_dir=tmp_path / "spool").load() == {"n": 1}


def test_symlinked_version_slot_is_replaced_not_followed(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "state.sv"
    versions = tmp_path / "state.sv.versions"
    versions.mkdir(mode=0o700)
    os.symlink(victim, versions / "1")  # generation 1 goes to slot 1 % 4
    sm = StateManager(state, keep_versions=3, spool_dir=tmp_path / "spool")
    sm.save({"n": 1})
    assert _untouched(victim)
    assert not (versions / "1").is_symlink()
    assert [v["generation"] for v in sm.list_versions()] == [1]


def test_reading_a_symlinked_version_slot_is_refused(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "state.sv"
    sm = StateManager(state, keep_versions=3, spool_dir=tmp_path / "spool")
    sm.save({"n": 1})
    slot = tmp_path / "state.sv.versions" / "1"
    slot.unlink()
    os.symlink(victim, slot)
    store = sm.store.sibling(".versions/1")
    with pytest.raises(StoragePermissionError, match="symbolic link"):
        store.read()
    assert sm.list_versions() == []  # reported as damaged, never read through the link


def test_symlinked_unreadable_copy_is_replaced_not_followed(tmp_path: Path, victim: Path) -> None:
    _sm, path = _saved(tmp_path)
    _replace_file(path, b"\x89SVT\r\n\x1a\n garbage")
    os.symlink(victim, f"{path}.unreadable")
    fresh = StateManager(path, compression=None, keep_versions=3, spool_dir=tmp_path / "spool")
    assert fresh.load_state() == {"n": 2}
    assert fresh.save_state({"n": 3})
    assert _untouched(victim)
    aside = Path(f"{path}.unreadable")
    assert not aside.is_symlink()
    assert aside.read_bytes() == b"\x89SVT\r\n\x1a\n garbage"


def test_symlinked_lock_file_is_refused(tmp_path: Path, victim: Path) -> None:
    state = tmp_path / "state.sv"
    os.symlink(victim, tmp_path / ".state.sv.lock")
    sm = StateManager(state, keep_versions=0, spool_dir=False)
    with pytest.raises(StoragePermissionError, match="symbolic link"):
        sm.save({"n": 1})
    assert _untouched(victim)
    assert not state.exists()
    # a dangling link would otherwise be created as the victim
    victim.unlink()
    with pytest.raises(StoragePermissionError, match="symbolic link"):
        sm.save({"n": 1})
    assert not victim.exists()


def _spool_with_unreachable_primary(tmp_path: Path) -> tuple[StateManager, Path]:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    spool = tmp_path / "spool"
    sm = StateManager(blocker / "state.sv", keep_versions=0, spool_dir=spool)
    return sm, spool


def test_symlinked_spool_label_is_replaced_not_followed(tmp_path: Path, victim: Path) -> None:
    sm, spool = _spool_with_unreachable_primary(tmp_path)
    assert sm.save_state({"n": 1}) is False  # primary unreachable: spooled
    label = next(spool.glob("*.url"))
    label.unlink()
    os.symlink(victim, label)
    assert sm.save_state({"n": 2}) is False
    assert _untouched(victim)
    assert not label.is_symlink()
    assert label.read_text() == sm.url + "\n"


def test_symlinked_spool_file_is_refused(tmp_path: Path, victim: Path) -> None:
    sm, spool = _spool_with_unreachable_primary(tmp_path)
    assert sm.save_state({"n": 1}) is False
    spooled = next(spool.glob("*.state"))
    spooled.unlink()
    os.symlink(victim, spooled)
    # A spool problem never blocks a save (loss path 3): the link is replaced, not followed.
    with pytest.raises(StorageError, match="local spool"):
        sm.save({"n": 2})
    assert _untouched(victim)
    assert not spooled.is_symlink()
    assert StateManager(sm.url, spool_dir=spool).load_state() == {"n": 2}  # not the victim


# -- item 11: modes under any umask ----------------------------------------------------------


@pytest.fixture(params=[0o000, 0o077, 0o022])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_every_file_is_0600_and_every_folder_0700(tmp_path: Path, umask: int) -> None:
    root = tmp_path / "made-by-statevault"
    state = root / "a" / "state.sv"
    spool = root / "spool" / "deep"
    sm = StateManager(state, keep_versions=2, spool_dir=spool)
    for n in range(1, 5):  # versions dir, slots, their lock files
        sm.save({"n": n})
    # Damaged in place (which also damages the hard-linked slot of generation 4): 0600 kept.
    Path(state).write_bytes(b"\x89SVT\r\n\x1a\n damaged")
    assert sm.load_state() == {"n": 3}
    assert sm.save_state({"n": 4})  # writes .unreadable
    (root / "b").mkdir()
    unreachable, _ = _spool_with_unreachable_primary(root / "b")
    assert unreachable.save_state({"n": 1}) is False  # spool file and its .url
    made = {k: v for k, v in _modes(root).items() if k not in ("b", "b/not-a-dir")}
    for expected_name in (
        "a/state.sv.unreadable",
        "a/.state.sv.lock",
        "a/state.sv.versions",
        "b/spool",
    ):
        assert expected_name in made, sorted(made)
    assert any(k.endswith(".url") for k in made)
    for name, mode in made.items():
        is_dir = (root / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode), oct(umask))


def test_spool_label_mode_when_it_already_existed_wider(tmp_path: Path, umask: int) -> None:
    sm, spool = _spool_with_unreachable_primary(tmp_path)
    assert sm.save_state({"n": 1}) is False
    label = next(spool.glob("*.url"))
    label.chmod(0o644)
    label.write_text("someone else's words\n")
    assert sm.save_state({"n": 2}) is False
    assert stat.S_IMODE(label.stat().st_mode) == 0o600
    assert label.read_text() == sm.url + "\n"

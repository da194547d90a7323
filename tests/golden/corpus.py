"""The golden corpus: state files of every type family, written once and loaded exactly forever.

Families come from the modules ``families_*.py`` beside this file; each defines
``FAMILIES: dict[str, Callable[[], dict]]`` (and optionally ``REQUIRES: dict[str, str]``, the
package a family's optional library is installed as, and ``MIN_PANDAS: dict[str, str]``).
A builder raises ImportError where its library (or pandas version) is missing. ``write`` saves
each family's state with
the public ``StateManager`` (zstd, no encryption) as ``<family>.svgold``; ``check`` loads every
file of a folder, compares it type by type with the family's value (``assert_same``), saves it
again and loads that copy too. A family whose library is missing on this stack must fail to
load with a DecodeError naming the package: never load as something else.

Used by tests/test_golden.py (the committed corpus under ``files/``), tests/golden/make_golden.py
(writes missing files) and tests/golden/portability.py (.ci/stacks: each stack writes, the others
read).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
SUFFIX = ".svgold"  # not *.state: .gitignore keeps state files out of git, these belong in it

if str(HERE.parent) not in sys.path:  # tests/: strategies.assert_same
    sys.path.insert(0, str(HERE.parent))

from statevault import StateManager  # noqa: E402
from statevault.errors import DecodeError  # noqa: E402

from strategies import assert_same  # noqa: E402


class Family:
    """One golden family: its name, value builder and the package its optional library needs."""

    def __init__(self, name: str, build: Callable[[], dict[str, Any]], requires: str) -> None:
        self.name, self.build, self.requires = name, build, requires

    def value(self) -> dict[str, Any] | None:
        """The family's value, or None when its optional library is not installed here."""
        try:
            return self.build()
        except ImportError:
            if not self.requires:
                raise
            return None


def families() -> dict[str, Family]:
    """Every family of every ``families_*.py`` module (a name defined twice is an error)."""
    found: dict[str, Family] = {}
    for path in sorted(HERE.glob("families_*.py")):
        spec = importlib.util.spec_from_file_location(f"_golden_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        requires: dict[str, str] = getattr(module, "REQUIRES", {})
        # MIN_PANDAS: families an older pandas cannot represent (its load must name pandas)
        min_pandas: dict[str, str] = getattr(module, "MIN_PANDAS", {})
        for name, build in module.FAMILIES.items():
            if name in found:
                raise ValueError(f"golden family {name!r} is defined twice ({path.name})")
            need = requires.get(name) or ("pandas" if name in min_pandas else "")
            found[name] = Family(name, build, need)
    return found


def manager(path: Path) -> StateManager:
    return StateManager(path, keep_versions=0, spool_dir=False)


def write(folder: Path, *, overwrite: bool = False) -> list[str]:
    """Save every family buildable here into ``folder``; returns the names written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, family in families().items():
        path = folder / f"{name}{SUFFIX}"
        if path.exists() and not overwrite:
            continue
        value = family.value()
        if value is None:
            continue
        manager(path).save(value)
        (folder / f".{path.name}.lock").unlink(missing_ok=True)  # the manager's lock file
        written.append(name)
    return written


def check_file(path: Path, family: Family) -> str:
    """Load ``path`` exactly as ``family``'s value, save it again, load that; returns what held.

    Raises AssertionError (or the load's error) on any difference. Works on a copy in a temp
    folder: a manager keeps a lock file beside its state, which must not land in the corpus.
    """
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "golden" / path.name
        copy.parent.mkdir()
        shutil.copyfile(path, copy)
        return _check_copy(copy, family)


def _check_copy(path: Path, family: Family) -> str:
    expected = family.value()
    if expected is None:
        message = ""
        try:
            manager(path).load()
        except DecodeError as exc:
            message = str(exc)
        if not message:
            raise AssertionError(f"{path.name} loaded without {family.requires} installed")
        if family.requires not in message:
            raise AssertionError(f"{path.name}: {message} does not name {family.requires}")
        return f"refused without {family.requires}"
    loaded = manager(path).load()
    assert_same(expected, loaded, f"{path.name}")
    with tempfile.TemporaryDirectory() as tmp:
        again = Path(tmp) / path.name
        manager(again).save(loaded)
        assert_same(expected, manager(again).load(), f"{path.name} saved again")
    return "exact, saved again"


def check(folder: Path) -> dict[str, str]:
    """``check_file`` for every golden file in ``folder``; a file of no known family fails."""
    known = families()
    results = {}
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        name = path.name[: -len(SUFFIX)]
        if name not in known:
            raise AssertionError(f"{path} belongs to no golden family defined here")
        results[name] = check_file(path, known[name])
    return results

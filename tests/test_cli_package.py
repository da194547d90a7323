"""The command line's shape: a package that reads only public names, and a lazy demo."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

import statevault
from statevault import StateManager
from statevault.cli import parser

SRC = Path(statevault.__file__).parent
CLI = SRC / "cli"


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from X import name`` in a file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            module = node.module or ""
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module]) if module else ".".join(base)
            out.extend((module, alias.name) for alias in node.names)
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


# Modules outside the layers: what they import from another statevault module is public.
OUTSIDE = [
    *sorted(CLI.glob("*.py")),
    SRC / "manager.py",
    SRC / "trading.py",
    SRC / "inspection.py",
    SRC / "info.py",
]


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_public_names_of_other_modules(path: Path) -> None:
    bad = [
        f"from {module} import {name}"
        for module, name in _imports(path)
        if module.startswith("statevault")
        and module != "statevault._version"  # the package's own version string
        and (_private(name) or any(_private(part) for part in module.split(".")))
    ]
    assert bad == []


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_cli_touches_no_private_attribute(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and _private(node.attr)
    ]
    assert bad == []


def test_cli_doc_names_no_private_member() -> None:
    doc = (SRC.parent.parent / "docs" / "cli.md").read_text()
    tree_names = {"_open_reader", "_load_root", "_resolve", "_reader", "_join", "_header_of"}
    assert [n for n in tree_names if f"`{n}" in doc or f".{n}(" in doc] == []


def test_demo_is_imported_only_by_the_demo_command(tmp_path: Path) -> None:
    path = tmp_path / "a.state"
    StateManager(path, spool_dir=False).save({"a": 1})
    code = (
        "import sys\n"
        "from statevault.cli import main\n"
        f"assert main(['info', {str(path)!r}]) == 0\n"
        f"assert main(['verify', {str(path)!r}]) == 0\n"
        "assert 'statevault.demo' not in sys.modules, 'demo imported'\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr


def test_the_parser_mirrors_the_demo_defaults() -> None:
    from statevault.demo import DEFAULT_URL, DemoConfig

    assert parser.DEMO_URL == DEFAULT_URL
    assert {
        f.name: getattr(DemoConfig(), f.name)
        for f in dataclasses.fields(DemoConfig)
        if f.name in parser.DEMO_DEFAULTS
    } == parser.DEMO_DEFAULTS
    args = parser.build_parser().parse_args(["demo"])
    assert (args.url, args.bars, args.seed, args.pairs) == (
        DEFAULT_URL,
        DemoConfig().bars,
        DemoConfig().seed,
        DemoConfig().pairs,
    )


def test_python_dash_m_runs_the_same_command() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "statevault", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0
    assert run.stdout.strip() == f"statevault {statevault.__version__}"


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


NEW_MODULES = [
    *sorted((SRC / "layers").glob("*.py")),
    *sorted(CLI.glob("*.py")),
    SRC / "inspection.py",
    SRC / "info.py",
    SRC / "trading.py",
]


@pytest.mark.parametrize("path", NEW_MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_layer_and_cli_modules_stay_small(path: Path) -> None:
    assert _lines(path) <= 400

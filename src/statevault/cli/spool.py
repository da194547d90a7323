"""``statevault spool URL [--push | --discard]``: show, push or drop a state's spooled save.

A spooled save is what a process saved locally while the primary storage could not be
reached. One whose base is unknown (the process never read the primary) is never pushed or
dropped by the library on its own (``flush_spool()`` raises ``ConflictError``): this command
shows it and lets a person decide. ``--push`` replaces the primary with it, as the next
generation; ``--discard`` deletes it. The spool directory is the library's default
(``STATEVAULT_SPOOL_DIR``, ...) unless ``--spool-dir`` names another.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..manager import StateManager
from .access import manager_options, state_url
from .parser import EXIT_NOT_FOUND, EXIT_OK

__all__ = ["add_spool_parser", "cmd_spool"]


def add_spool_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``spool`` command to the ``statevault`` parser's subcommands."""
    p = sub.add_parser(
        "spool", parents=[common], help="show, push (--push) or drop (--discard) a spooled save"
    )
    p.add_argument(
        "url", nargs="?", help="path or fsspec URL of the state; default: STATEVAULT_URL"
    )
    p.add_argument("--spool-dir", metavar="PATH", help="the spool directory (default: library's)")
    action = p.add_mutually_exclusive_group()
    action.add_argument(
        "--push", action="store_true", help="replace the primary with the spooled save"
    )
    action.add_argument("--discard", action="store_true", help="delete the spooled save")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_spool(args: argparse.Namespace) -> int:
    """Show the spooled save of ``args.url``, or push or discard it (see the module)."""
    options: dict[str, Any] = {**manager_options(args), "keep_versions": 0}
    manager = StateManager(state_url(args), spool_dir=args.spool_dir, **options)
    info = manager.get_state_info()
    spooled = info["spool"]
    if spooled is None:
        print(f"nothing is spooled for {manager.url}")
        return EXIT_NOT_FOUND
    if args.push:
        manager.flush_spool(force=True)
        print(f"pushed the spooled save ({spooled['path']}) to {manager.url}")
        return EXIT_OK
    if args.discard:
        manager.discard_spool()
        print(f"discarded the spooled save {spooled['path']} of {manager.url}")
        return EXIT_OK
    report = {
        "url": manager.url,
        "spool": spooled,
        "primary_generation": info["generation"],
        "primary_exists": info["exists"],
    }
    if args.json:
        print(json.dumps(report, default=str, indent=2))
    else:
        base = spooled["base"]
        based = (
            f"based on generation {base.get('generation')}"
            if base
            else "base unknown (saved while the primary could not be read)"
        )
        print(
            f"{manager.url}: spooled generation {spooled['generation']} ({spooled['size']} "
            f"bytes, {spooled['path']}), {based}; primary generation {info['generation']}. "
            "Run again with --push to replace the primary with it, or --discard to drop it."
        )
    return EXIT_OK

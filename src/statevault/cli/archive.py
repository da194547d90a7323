"""``statevault compact`` and ``statevault export``: a state as one fresh pack, or as one file.

Both go through the library (``statevault.delta.compact.compact_state`` / ``export_state``)
with a manager that saves like the state's writer (``access.writer``): same kind, schema
version and compression, the given keys. ``compact`` writes the URL (a new generation, by
compare-and-swap: a concurrent writer makes it fail with status 12, nothing written over
it); ``export`` writes only OUT and refuses an existing one (status 13) unless ``--force``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..delta.compact import compact_state, export_state
from ..frame import PLAIN_VERSION
from .access import check_ring, open_view, print_json, storage_options, writer
from .parser import EXIT_OK
from .progress import Progress
from .render import human_size

__all__ = ["add_archive_parsers", "cmd_compact", "cmd_export"]


def add_archive_parsers(
    sub: Any,
    common: argparse.ArgumentParser,
    keep_option: Callable[[argparse.ArgumentParser], None],
) -> None:
    """The ``compact`` and ``export`` subcommands (``parser.build_parser`` calls this)."""
    p = sub.add_parser(
        "compact", parents=[common], help="rewrite the state as one fresh pack (delta saves)"
    )
    p.add_argument(
        "url", nargs="?", help="path or fsspec URL of the state; default: STATEVAULT_URL"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    keep_option(p)

    p = sub.add_parser(
        "export", parents=[common], help="write the state as one self-contained file to OUT"
    )
    p.add_argument(
        "url", nargs="?", help="path or fsspec URL of the state; default: STATEVAULT_URL"
    )
    p.add_argument("out", metavar="OUT", help="path or fsspec URL to write (not overwritten)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--json", action="store_true", help="print JSON")


def _packs(delta: Any) -> str:
    if not isinstance(delta, dict) or "packs" not in delta:
        return "a self-contained frame"
    return (
        f"{delta['packs']} pack{'s' if delta['packs'] != 1 else ''}, "
        f"{human_size(delta['pack_bytes'])} ({delta['live_fraction']:.0%} live)"
    )


def cmd_compact(args: argparse.Namespace) -> int:
    """``statevault compact [URL]``: the current state saved again as one fresh pack."""
    probe = open_view(args)
    check_ring(probe)  # before writing: a copy in the wrong slot would evict a kept version
    header = probe.header()
    mgr = writer(args, probe, header, "the current state")
    before = probe.info().get("delta")
    with Progress.for_command("compact", json_output=args.json) as progress:
        generation = compact_state(mgr, progress=progress.step)
    after = probe.info().get("delta")
    if args.json:
        return print_json(
            {"url": mgr.url, "generation": generation, "before": before, "after": after}
        )
    print(f"compacted {mgr.url} as generation {generation}: {_packs(after)} (was {_packs(before)})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``statevault export [URL] OUT``: the current state as one self-contained file."""
    probe = open_view(args)
    header = probe.header()
    mgr = writer(args, probe, header, "the current state")
    with Progress.for_command("export", json_output=args.json) as progress:
        done = export_state(
            mgr,
            args.out,
            force=args.force,
            storage_options=storage_options(args),
            progress=progress.step,
        )
    if args.json:
        return print_json(
            {
                "url": mgr.url,
                "out": done.url,
                "generation": done.generation,
                "size": done.size,
                "format_version": PLAIN_VERSION,
            }
        )
    print(
        f"exported {mgr.url} (generation {done.generation}) to {done.url}: "
        f"{done.size:,} bytes, one self-contained file (format {PLAIN_VERSION})"
    )
    return EXIT_OK

"""The commands of ``statevault``: each reads through ``statevault.open_state`` only.

A command takes the parsed arguments, prints its result and returns the exit status; errors
propagate to ``main`` (``statevault.cli``), which prints one line and maps them to a status.
Nothing here reads a private name of the library: the inspection API is the whole interface
(``restore`` writes through the public ``StateManager``). ``diff`` and ``rotate-keys`` live in
``statevault.cli.tools``; the argument helpers all commands share in ``statevault.cli.access``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from ..errors import CorruptStateError, StateNotFoundError
from ..inspection import StateView, VersionNotRetained, open_state
from ..layers import NoSuchName, looks_trading
from .access import (
    check_ring,
    key_ids,
    manager_options,
    not_retained,
    open_view,
    print_json,
    state_url,
    storage_options,
    writer,
)
from .archive import cmd_compact, cmd_export
from .parser import EXIT_OK, UsageError
from .progress import Progress
from .render import human_size, render, render_entry, to_json
from .spool import cmd_spool
from .tools import cmd_diff, cmd_rotate_keys

__all__ = ["COMMANDS", "state_url", "storage_options"]


# -- reading ------------------------------------------------------------------------------


def _section(view: StateView, name: str, version: int | None = None) -> Any:
    """One top-level key or pair; an unknown name is a usage error listing what there is."""
    try:
        return view.section(name, version)
    except NoSuchName as e:
        keys = ", ".join(repr(k) for k in e.keys)
        pair_names = ", ".join(repr(k) for k in e.pairs)
        raise UsageError(
            f"no section {name!r}: top-level keys are {keys or 'none'}"
            + (f"; pairs are {pair_names}" if pair_names else "")
        ) from None


def _print_value(args: argparse.Namespace, value: Any) -> int:
    if args.json:
        print(json.dumps(to_json(value), indent=2))
    else:
        print("\n".join(render_entry("", args.section, value, 0)))
    return EXIT_OK


# -- commands -----------------------------------------------------------------------------


def _describe(view: StateView) -> dict[str, Any]:
    """``get_state_info()`` plus ``format``; raises the header's error for a bad object."""
    info = view.info()
    if not info["exists"]:
        raise StateNotFoundError(f"No state is stored at {view.url}: check the URL.")
    if info["readable"]:
        info["format"] = f"statevault frame, format version {info['format_version']}"
        return info
    legacy = view.json_document()  # raises the precise error: not a state file, truncated, ...
    if legacy is None:
        raise CorruptStateError(f"{view.url}: {info.get('error', 'the header cannot be read')}")
    info.pop("error", None)
    info["format"] = "plain JSON (not converted yet: the next save writes a statevault frame)"
    info["kind"] = "trading" if looks_trading(legacy) else "json"
    info["sections"] = len(legacy)
    return info


def cmd_info(args: argparse.Namespace) -> int:
    """``statevault info URL``: what the header and the storage say; nothing is decoded."""
    view = open_view(args)
    info = _describe(view)
    info["key_ids"] = key_ids(view, info)
    if args.json:
        print(json.dumps(to_json(info), indent=2))
        return EXIT_OK
    modified = info["last_modified"]
    created = info.get("created")
    transforms = ", ".join(info["transforms"]) or "none"
    rows = [
        ("url", info["url"]),
        ("format", info["format"]),
        ("kind", info.get("kind") or "-"),
        ("size", human_size(info["size"])),
        ("generation", info["generation"] if info["generation"] is not None else "-"),
        ("transforms", transforms + ("  (encrypted)" if info.get("encrypted") else "")),
        *(
            ("key id" if kind == "encryption" else "signing key", key)
            for kind, key in info["key_ids"].items()
        ),
        ("sections", info["sections"]),
        ("created", created.isoformat(sep=" ", timespec="seconds") if created else "-"),
        ("last modified", modified.isoformat(sep=" ", timespec="seconds") if modified else "-"),
        (
            "storage",
            f"{info['protocol']} (atomic replace: {'yes' if info['atomic'] else 'no'}, "
            f"conditional writes: {'yes' if info['conditional_writes'] else 'no'})",
        ),
    ]
    delta = info.get("delta")
    if delta:
        rows.append(("delta", _delta_row(delta)))
    for name, value in rows:
        print(f"{name + ':':<15}{value}")
    return EXIT_OK


def _delta_row(delta: dict[str, Any]) -> str:
    """How much of a delta state lives in shared packs, and how fragmented it is."""
    if "error" in delta:
        return f"packs unknown ({delta['error']})"
    return (
        f"{delta['packs']} packs, {human_size(delta['pack_bytes'])} "
        f"({delta['live_fraction']:.0%} live), {delta['buffers']} buffers in "
        f"{delta['extents']} extents (at most {delta['max_extents']} per buffer), "
        f"{human_size(delta['inline_bytes'])} inline, {delta['retired_packs']} packs retired"
    )


def cmd_show(args: argparse.Namespace) -> int:
    """``statevault show URL``: the state (or one section) for a person, or as JSON."""
    view = open_view(args)
    if args.at_version is not None:
        return _show_version(args, view, args.at_version)
    if args.section is not None:
        return _print_value(args, _section(view, args.section))
    doc = view.read()
    if args.json:
        print(json.dumps(to_json(doc.state), indent=2))
        return EXIT_OK
    if doc.header is None:
        fmt = "plain JSON (trading state)" if doc.trading else "plain JSON"
    else:
        fmt = f"statevault frame v{doc.header.version}"
    print(f"# {view.url}  ({fmt})")
    print("\n".join(render(doc.state)))
    return EXIT_OK


def _show_version(args: argparse.Namespace, view: StateView, version: int) -> int:
    """``show --version V``: like ``show``, from the retained copy of generation ``V``.

    As for the current state, nothing is migrated and nothing is written; ``--section`` reads
    the header, the root and the value's own sections of the copy with ranged reads.
    """
    try:
        if args.section is not None:
            return _print_value(args, _section(view, args.section, version))
        doc = view.load(version)
    except VersionNotRetained as e:
        raise not_retained(view, version, state_url(args)) from e
    if args.json:
        print(json.dumps(to_json(doc.state), indent=2))
        return EXIT_OK
    assert doc.header is not None
    print(f"# {view.url}  (retained version {version}, statevault frame v{doc.header.version})")
    print("\n".join(render(doc.state)))
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """``statevault history URL``: the retained versions, newest first; nothing is decoded."""
    view = open_view(args)
    exists = view.exists()  # asked first: a storage failure is exit 10, not []
    versions = check_ring(view)
    if not versions and not exists:
        raise StateNotFoundError(f"No state is stored at {view.url}: check the URL.")
    current = view.current_generation()
    keep = view.keep_versions
    if args.json:
        out = {
            "url": view.url,
            "keep_versions": keep,
            "current_generation": current,
            "versions": versions,
        }
        print(json.dumps(to_json(out), indent=2))
        return EXIT_OK
    if not versions:
        print(
            f"no retained versions of {view.url}: it was saved with keep_versions=0, or before "
            "statevault kept versions"
        )
        return EXIT_OK
    rows = [
        (
            str(v["generation"]),
            v["created"].isoformat(sep=" ", timespec="seconds"),
            f"{v['size']:,} bytes",
            "current" if v["current"] else "",
        )
        for v in versions
    ]
    width = [max(len(title), *(len(r[i]) for r in rows)) for i, title in enumerate(_COLUMNS)]
    count = f"{len(versions)} retained version{'s' if len(versions) != 1 else ''}"
    print(f"# {view.url}: {count} (keep_versions={keep})")
    print(f"{_COLUMNS[0]:>{width[0]}}  {_COLUMNS[1]:<{width[1]}}  {_COLUMNS[2]}")
    for generation, created, size, marker in rows:
        line = f"{generation:>{width[0]}}  {created:<{width[1]}}  {size:>{width[2]}}  {marker}"
        print(line.rstrip())
    if current is not None and not any(v["current"] for v in versions):
        print(f"(the current state, generation {current}, has no retained copy)")
    print(f"restore one with: statevault restore {state_url(args)} GENERATION")
    return EXIT_OK


_COLUMNS = ("generation", "created (UTC)", "size")


def cmd_restore(args: argparse.Namespace) -> int:
    """``statevault restore URL VERSION``: make a retained version current, as a new save.

    The copy is re-saved as its writer wrote it: same manager kind, schema version (so the
    application's migrations do not run again) and compression; encrypted with the first
    given key, if any. No local spool: the restore is written to the URL or fails. The
    application's manager gets ``ConflictError`` on its next save (it must load again).
    """
    probe = open_view(args)
    check_ring(probe)  # before writing: a copy in the wrong slot would evict a kept version
    try:
        header = probe.header(args.version)
    except VersionNotRetained as e:
        raise not_retained(probe, args.version, state_url(args)) from e
    mgr = writer(args, probe, header, f"version {args.version}")
    progress = Progress.for_command("restore", json_output=args.json)
    try:
        # StateManager.restore() is load(version) then save(): done here in its two steps so
        # that a terminal shows which one a large state is in.
        with progress:
            progress.step(f"reading and decoding version {args.version}", 1, 2)
            state = mgr.load(args.version)
            progress.step("saving it as a new generation", 2, 2)
            generation = mgr.save(state)
    except StateNotFoundError as e:  # pruned by a save between the lookup and the read
        raise not_retained(probe, args.version, state_url(args)) from e
    if args.json:
        return print_json(
            {"url": mgr.url, "restored_version": args.version, "generation": generation}
        )
    print(f"restored version {args.version} of {mgr.url} as generation {generation}")
    return EXIT_OK


def _count(obj: Any) -> int:
    if isinstance(obj, dict):
        return 1 + sum(_count(v) for v in obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return 1 + sum(_count(v) for v in obj)
    return 1


def cmd_verify(args: argparse.Namespace) -> int:
    """``statevault verify URL``: read everything, check every checksum, decode every value."""
    view = open_view(args)
    doc = view.verify()
    state = doc.state
    if args.json:
        return print_json(
            {
                "url": view.url,
                "ok": True,
                "format": doc.format,
                "generation": doc.header.generation if doc.header is not None else None,
                "sections": len(doc.header.sections) if doc.header is not None else None,
                "size": doc.size,
                "values": _count(state),
            }
        )
    if doc.header is None:
        print(
            f"OK {view.url}: plain JSON, {len(state)} top-level keys, {_count(state):,} "
            "values parse; it has no checksums (the next save writes a statevault frame "
            "that has)"
        )
        return EXIT_OK
    sections = len(doc.header.sections)
    print(
        f"OK {view.url}: generation {doc.header.generation}, {sections} section"
        f"{'s' if sections != 1 else ''}, {doc.size:,} bytes; every checksum matches and "
        f"all {_count(state):,} values decode"
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """``statevault demo``: the simulated trader that is killed half-way and resumes."""
    from ..demo import DemoConfig, run_demo  # only this command needs the demo

    try:
        config = DemoConfig(bars=args.bars, seed=args.seed, pairs=args.pairs)
    except ValueError as e:
        raise UsageError(str(e)) from e
    narrative = io.StringIO() if args.json else None  # --json: one object, not the story
    quiet = _story_held if args.json else contextlib.nullcontext
    with quiet():
        code = run_demo(
            args.url,
            config,
            storage_options=storage_options(args),
            encryption_key=args.key,
            key_file=args.key_file,
            in_process=args.in_process,
            out=narrative,
        )
    if args.json:
        info = open_state(args.url, **manager_options(args)).info()
        print_json(
            {
                "url": info["url"],
                "status": code,
                "resumed_exactly": code == EXIT_OK,
                "generation": info["generation"],
                "size": info["size"],
                "bars": config.bars,
                "pairs": config.pairs,
                "seed": config.seed,
            }
        )
    return code


@contextlib.contextmanager
def _story_held() -> Iterator[None]:
    """Hold back the demo's story: stdout and stderr, at the file descriptors too (its child
    processes write there). Progress and narrative are dropped; its own error lines
    (``statevault demo...``) are replayed on stderr at the end."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    in_process = io.StringIO()
    with tempfile.TemporaryFile("w+") as held:
        for fd in saved:
            os.dup2(held.fileno(), fd)
        try:
            with contextlib.redirect_stdout(in_process), contextlib.redirect_stderr(in_process):
                yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            held.seek(0)
            for line in [*held, *in_process.getvalue().splitlines(keepends=True)]:
                if line.startswith("statevault demo"):
                    sys.stderr.write(line)


COMMANDS = {
    "info": cmd_info,
    "show": cmd_show,
    "verify": cmd_verify,
    "history": cmd_history,
    "restore": cmd_restore,
    "demo": cmd_demo,
    "diff": cmd_diff,
    "rotate-keys": cmd_rotate_keys,
    "spool": cmd_spool,
    "compact": cmd_compact,
    "export": cmd_export,
}

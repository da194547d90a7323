"""The ``statevault`` command line: its argument parser and its exit statuses.

Every failure exits with a status of its own (``EXIT_CODES``, documented in docs/cli.md);
``exit_code`` maps an error to it. Nothing here imports the demo: its defaults are mirrored
below (a test checks they match ``statevault.demo``).
"""

from __future__ import annotations

import argparse
from typing import Any

from .._version import __version__
from ..errors import (
    ConflictError,
    CorruptStateError,
    DecodeError,
    InvalidKeyError,
    MissingKeyError,
    NotAStateFileError,
    StateNotFoundError,
    StorageError,
    TargetExistsError,
    UnknownTransformError,
    UnsupportedFormatError,
    WrongKeyError,
)

__all__ = [
    "DEMO_DEFAULTS",
    "DEMO_URL",
    "EXIT_CODES",
    "UsageError",
    "build_parser",
    "exit_code",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NOT_A_STATE = 4
EXIT_MISSING_KEY = 5
EXIT_WRONG_KEY = 6
EXIT_CORRUPT = 7
EXIT_UNSUPPORTED = 8
EXIT_DECODE = 9
EXIT_STORAGE = 10
EXIT_DEMO_MISMATCH = 11
EXIT_CONFLICT = 12
EXIT_EXISTS = 13
EXIT_INTERRUPTED = 130

#: Exit status -> meaning; the order of ``LADDER`` decides which class wins.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success (verify: the state is sound)",
    EXIT_ERROR: "any other error (an unexpected one says so and suggests --debug)",
    EXIT_USAGE: (
        "bad command line: unknown flag, bad --storage-options JSON, invalid key, "
        "--keep-versions other than the writer's"
    ),
    EXIT_NOT_FOUND: "no state is stored at the URL, or the version asked for is not retained",
    EXIT_NOT_A_STATE: "the object at the URL is not a statevault state (nor plain JSON)",
    EXIT_MISSING_KEY: "the state is encrypted and no key was given",
    EXIT_WRONG_KEY: "none of the given keys decrypts the state",
    EXIT_CORRUPT: "the state is damaged: checksum mismatch, truncated, malformed",
    EXIT_UNSUPPORTED: "written by a newer statevault, or with a transform not installed here",
    EXIT_DECODE: "intact, but holds a type this process cannot rebuild (register it)",
    EXIT_STORAGE: "the storage failed: unreachable, permission denied, ...",
    EXIT_DEMO_MISMATCH: "demo: the resumed state differs from an uninterrupted run",
    EXIT_CONFLICT: "another writer saved the state meanwhile (nothing written over it): run again",
    EXIT_EXISTS: "export: OUT already exists (give --force to replace it)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

LADDER: tuple[tuple[type[BaseException], int], ...] = (
    (StateNotFoundError, EXIT_NOT_FOUND),
    (NotAStateFileError, EXIT_NOT_A_STATE),
    (MissingKeyError, EXIT_MISSING_KEY),
    (WrongKeyError, EXIT_WRONG_KEY),
    (InvalidKeyError, EXIT_USAGE),
    (UnsupportedFormatError, EXIT_UNSUPPORTED),
    (UnknownTransformError, EXIT_UNSUPPORTED),
    (CorruptStateError, EXIT_CORRUPT),
    (DecodeError, EXIT_DECODE),
    (StorageError, EXIT_STORAGE),
    (ConflictError, EXIT_CONFLICT),
    (TargetExistsError, EXIT_EXISTS),
)

KEY_HINT = " (statevault: give the key with --key, --key-file or STATEVAULT_KEY)"

#: ``statevault.demo.DEFAULT_URL`` and ``DemoConfig()``'s fields, so that building the parser
#: does not import the demo.
DEMO_URL = "./demo_state/trader.state"
DEMO_DEFAULTS = {"bars": 400, "seed": 5, "pairs": 4}


class UsageError(Exception):
    """A bad command line the parser could not catch (bad JSON in an option, ...)."""


def exit_code(error: BaseException) -> int:
    """The exit status for ``error`` (see ``EXIT_CODES``)."""
    for cls, code in LADDER:
        if isinstance(error, cls):
            return code
    return EXIT_ERROR


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("keys and storage")
    group.add_argument(
        "--key",
        action="append",
        metavar="KEY",
        help="Fernet key (repeat for several, newest first); default: STATEVAULT_KEY",
    )
    group.add_argument("--key-file", metavar="PATH", help="file holding the key(s)")
    group.add_argument(
        "--storage-options",
        metavar="JSON",
        help="fsspec storage options as a JSON object; default: STATEVAULT_STORAGE_OPTIONS",
    )
    group.add_argument("--debug", action="store_true", help="print tracebacks on errors")
    return common


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def _keep_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-versions",
        type=_positive,
        metavar="N",
        help="the keep_versions the state is saved with (default: the library's, 3)",
    )


def _url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url", nargs="?", help="path or fsspec URL of the state; default: STATEVAULT_URL"
    )


def _json(parser: argparse.ArgumentParser, text: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=text)


def _add_diff(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "diff", parents=[common], help="what changed between two versions (or one and now)"
    )
    p.add_argument(
        "operands",
        nargs="*",
        metavar="[URL] [V1] [V2]",
        help="no version: the previous retained version vs the current state; V1: that "
        "version vs the current state; V1 V2: V1 vs V2",
    )
    p.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="rows/cells listed per value (20)"
    )
    _json(p)
    _keep_option(p)


def _add_spool(sub: Any, common: argparse.ArgumentParser) -> None:
    from .spool import add_spool_parser  # spool.py imports this module (exit codes)

    add_spool_parser(sub, common)


def _add_archive(sub: Any, common: argparse.ArgumentParser) -> None:
    from .archive import add_archive_parsers  # archive.py imports this module (exit codes)

    add_archive_parsers(sub, common, _keep_option)


def _add_rotate_keys(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "rotate-keys",
        parents=[common],
        help="re-encrypt the state and its retained versions with the first key",
    )
    _url(p)
    _json(p)
    _keep_option(p)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``statevault`` command (``args.command`` names the command)."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="statevault",
        description="Inspect, verify and demonstrate statevault states.",
        epilog="Exit statuses: " + "; ".join(f"{c} {m}" for c, m in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"statevault {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "info", parents=[common], help="format, size, generation, transforms, sections"
    )
    _url(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("show", parents=[common], help="the state, readable (or --json)")
    _url(p)
    p.add_argument(
        "--section",
        metavar="NAME",
        help="one top-level key, or one pair of a trading state (reads only that pair)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON rendering")
    p.add_argument(
        "--version",
        dest="at_version",
        type=_positive,
        metavar="GENERATION",
        help="show a retained version (see `statevault history`) instead of the current state",
    )
    _keep_option(p)

    p = sub.add_parser("verify", parents=[common], help="decode everything; exit 0 if sound")
    _url(p)
    _json(p)

    p = sub.add_parser("history", parents=[common], help="the retained versions, newest first")
    _url(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    _keep_option(p)

    p = sub.add_parser(
        "restore", parents=[common], help="make a retained version current (as a new save)"
    )
    _url(p)
    p.add_argument("version", type=_positive, metavar="VERSION", help="the generation to restore")
    _json(p)
    _keep_option(p)

    p = sub.add_parser(
        "demo", parents=[common], help="a simulated trader killed half-way that resumes exactly"
    )
    p.add_argument("--url", default=DEMO_URL, help=f"where to keep the state ({DEMO_URL})")
    p.add_argument("--bars", type=int, default=DEMO_DEFAULTS["bars"], help="bars to trade")
    p.add_argument(
        "--seed", type=int, default=DEMO_DEFAULTS["seed"], help="random seed of the feed"
    )
    p.add_argument("--pairs", type=int, default=DEMO_DEFAULTS["pairs"], help="pairs traded (1-8)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run both halves in this process (automatic for memory://)",
    )
    _json(p, "print a JSON summary instead of the story")

    # Commands registered by their own function: one line each.
    _add_diff(sub, common)
    _add_rotate_keys(sub, common)
    _add_spool(sub, common)
    _add_archive(sub, common)
    return parser

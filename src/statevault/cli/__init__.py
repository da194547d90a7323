"""The ``statevault`` command: inspect, check and demonstrate stored states.

Commands: ``info`` (what the header says, without decoding), ``show`` (the state for a person,
or ``--json`` for machines; ``--version`` for a retained version), ``verify`` (decode
everything, check every checksum), ``history`` (the retained versions), ``restore`` (make a
retained version current, as a new save), ``diff`` (what changed between two versions),
``rotate-keys`` (re-encrypt with the newest key), ``compact`` (the state as one fresh
pack), ``export`` (one self-contained file elsewhere) and ``demo`` (a simulated trader that
dies half-way and resumes exactly); every one takes ``--json``. The URL comes from the argument or
``STATEVAULT_URL``, keys and storage options from ``--key`` / ``--key-file`` /
``--storage-options`` or from ``STATEVAULT_KEY`` / ``STATEVAULT_KEY_FILE`` /
``STATEVAULT_STORAGE_OPTIONS``; managers
use the library's ``keep_versions`` unless ``--keep-versions`` says otherwise. Every failure
prints one line on stderr and exits with a status of its own (the table is ``EXIT_CODES``,
documented in docs/cli.md); ``--debug`` adds the traceback.

The package: ``parser`` (arguments, exit statuses), ``access`` (URL, keys, options, the view),
``commands``, ``tools`` and ``archive`` (one function per command, reading through
``statevault.open_state`` only; ``archive`` writes through ``statevault.delta.compact``),
``render`` and ``diffview`` (pure functions: state or diff -> text or JSON), ``progress``
(a stderr line on a terminal). The demo is imported only when ``statevault demo`` runs.

"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ..errors import StateError
from .commands import COMMANDS
from .parser import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_MISSING_KEY,
    EXIT_USAGE,
    EXIT_WRONG_KEY,
    KEY_HINT,
    UsageError,
    build_parser,
    exit_code,
)
from .render import render, to_json

__all__ = ["EXIT_CODES", "UsageError", "build_parser", "exit_code", "main", "render", "to_json"]


def _error_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _attach_key_values(argv: Sequence[str]) -> list[str]:
    """``--key VALUE`` as ``--key=VALUE``: a Fernet key may start with ``-`` (1 key in 64),
    which argparse would otherwise take for an option and refuse."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        value = next(words, None) if word == "--key" else None
        out.append(word if value is None else f"--key={value}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``statevault`` command; return its exit status (see ``EXIT_CODES``)."""
    parser = build_parser()
    args = parser.parse_args(_attach_key_values(sys.argv[1:] if argv is None else argv))
    func = COMMANDS[args.command]
    try:
        return func(args)
    except KeyboardInterrupt:
        print("statevault: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (| head): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except UsageError as e:
        _report(args, e, f"statevault {args.command}: {_error_line(e)}")
        return EXIT_USAGE
    except StateError as e:
        code = exit_code(e)
        hint = KEY_HINT if code in (EXIT_MISSING_KEY, EXIT_WRONG_KEY) else ""
        _report(args, e, f"statevault {args.command}: {_error_line(e)}{hint}")
        return code
    except Exception as e:  # noqa: BLE001 - a bug or an unexpected library error: one line
        _report(
            args,
            e,
            f"statevault {args.command}: unexpected error: {type(e).__name__}: {_error_line(e)} "
            "(run again with --debug for the traceback)",
        )
        return EXIT_ERROR


def _report(args: argparse.Namespace, error: BaseException, line: str) -> None:
    if getattr(args, "debug", False):
        traceback.print_exception(error, file=sys.stderr)
    print(line, file=sys.stderr, flush=True)

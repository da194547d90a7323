"""Checks the cloud backends' own test files share: request counts, a clean process exit, and
the by-hand start scripts in ``backends/``.

``RequestCounter`` records what the server's own log says each operation sent
(``requests_per_operation``: for each of the usual operations in turn).
``assert_exits_cleanly`` runs a child that uses two stores (a shared client and a fresh one)
and exits with warnings as errors: no unclosed session, no ResourceWarning, nothing ignored at
exit. ``start_script`` runs a ``backends/`` script as a person would, yields the
``STORAGE_OPTIONS`` it prints, then stops it with Ctrl-C and checks it said "stopped".
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from statevault.errors import ConflictError
from statevault.storage import Store

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class RequestLog(Protocol):
    def mark(self) -> int: ...
    def requests_since(self, mark: int) -> list[str]: ...


class RequestCounter:
    """``measure(name, fn)`` runs ``fn`` (a ``ConflictError`` is an answer too: None) and
    keeps, in ``counts[name]``, the requests the server logged meanwhile."""

    def __init__(self, server: RequestLog) -> None:
        self.server = server
        self.counts: dict[str, list[str]] = {}

    def measure(self, name: str, fn: Callable[[], T]) -> T | None:
        mark = self.server.mark()
        try:
            return fn()
        except ConflictError:
            return None
        finally:
            self.counts[name] = self.server.requests_since(mark)


def requests_per_operation(
    server: RequestLog, store: Store, names: Sequence[str]
) -> dict[str, list[str]]:
    """A write, then each operation in ``names`` in turn (from: read, info, read_range,
    read_head, write_if_match (a stale token), write_if_none_match, delete, delete_missing);
    what the server logged for each."""
    counter = RequestCounter(server)
    first = counter.measure("write", lambda: store.write([b"abc", memoryview(b"def")]))
    assert first is not None
    operations: dict[str, Callable[[], object]] = {
        "read": store.read,
        "info": store.info,
        "read_range": lambda: store.read_range(1, 4),
        "read_head": lambda: store.read_head(2),
        "write_if_match": lambda: store.write([b"x"], expect=first.token + "0"),
        "write_if_none_match": lambda: store.write([b"x"], expect=None),
        "delete": store.delete,
        "delete_missing": store.delete,
    }
    for name in names:
        counter.measure(name, operations[name])
    return counter.counts


def listing_in_pages(server: RequestLog, store: Store) -> tuple[list[tuple[str, int]], list[str]]:
    """Five objects under ``<store>.packs/``, listed with ``list_page=2``: the (name, size)
    pairs found and the requests the server logged for that one listing."""
    folder = store.sibling(".packs")
    for i in range(5):
        folder.sibling(f"/p{i}").write([b"x" * i])
    folder.list_page = 2  # type: ignore[attr-defined]  # five objects: three pages
    mark = server.mark()
    found = folder.list_dir()
    sent = server.requests_since(mark)
    assert found is not None
    return sorted((e.name, e.size) for e in found), sent


EXIT_CLEANLY = """
    import json, sys, warnings
    warnings.simplefilter("error")
    from statevault.storage import open_store

    options = json.loads(sys.argv[1])
    store = open_store(sys.argv[2], options)
    store.write([b"bye"])
    assert bytes(store.read()[0]) == b"bye"
    other = open_store(sys.argv[2], dict(options, skip_instance_cache=True))
    assert other.info() is not None
    del other
    print("ok", flush=True)
"""


def assert_exits_cleanly(url: str, options: dict[str, Any]) -> None:
    """A child process writes and reads ``url`` through two stores, then exits cleanly."""
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            textwrap.dedent(EXIT_CLEANLY),
            json.dumps(options),
            url,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    for marker in ("Unclosed", "ResourceWarning", "Exception ignored", "Traceback"):
        assert marker not in result.stderr, result.stderr


@contextmanager
def start_script(relative: str, *args: str) -> Iterator[dict[str, Any]]:
    """Run ``ROOT/relative`` with ``args``; yield the options it prints; Ctrl-C it after."""
    server = subprocess.Popen(
        [sys.executable, str(ROOT / relative), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        options = None
        for line in server.stdout:
            if line.startswith("STORAGE_OPTIONS="):
                options = json.loads(line.split("=", 1)[1])
            if line.startswith("Ctrl-C"):
                break
        assert options is not None
        yield options
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert out.strip().endswith("stopped")

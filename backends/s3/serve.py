"""Run a throwaway S3 server (moto) on 127.0.0.1 to try statevault's s3:// storage by hand.

Starts moto's S3 server on a free loopback port (or ``--port``), creates a bucket, prints the
endpoint and the ``storage_options`` to pass to statevault, and serves until Ctrl-C. All
data lives in memory and is gone when the server stops. Needs ``moto[server]`` (in the
``test`` extra). See README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import logging
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

HOST = localserver.HOST  # loopback only: this server accepts any credentials
#: moto accepts any credentials; these are the conventional dummy ones, not a secret.
DUMMY_KEY = DUMMY_SECRET = "testing"  # noqa: S105


def storage_options(endpoint: str) -> dict[str, Any]:
    """The ``storage_options`` that point statevault (s3fs) at ``endpoint``."""
    return {
        "key": DUMMY_KEY,
        "secret": DUMMY_SECRET,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--bucket", default="statevault", help="bucket to create")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    try:
        import botocore.session
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("moto[server] is needed: pip install 'statevault[test]'", file=sys.stderr)
        return 2

    werkzeug = logging.getLogger("werkzeug")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    else:
        werkzeug.disabled = True

    server = ThreadedMotoServer(ip_address=HOST, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    options = storage_options(endpoint)

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_SECRET,
    )
    try:
        client.create_bucket(Bucket=args.bucket)
    finally:
        client.close()

    banner = [
        f"moto S3 server: {endpoint}",
        f"bucket:         {args.bucket}",
        f"STORAGE_OPTIONS={json.dumps(options)}",
        *localserver.try_lines(f"s3://{args.bucket}/demo/state.svlt", options),
        "Ctrl-C to stop (all data is in memory and goes with the server).",
    ]
    localserver.serve(banner, server.stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

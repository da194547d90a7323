"""A faulty loopback TCP proxy for HTTP: put it between s3fs and a real (moto) S3 server.

Listens on 127.0.0.1 only and forwards each HTTP request to the upstream server, one request
per connection (it rewrites ``Connection`` to ``close`` both ways, so every request is a new
connection and requests are numbered reliably, retries included). A plan picks an
``Action`` for request number ``i`` (0-based, counted from the last ``reset``):

- ``PASS``: forward the request, relay the answer;
- ``REFUSE``: reset the connection at once, without reading (the request never reaches S3);
- ``SILENCE``: read the request and never answer (the client's read timeout ends it);
- ``DROP``: forward the request (it lands on S3), then reset the connection instead of
  relaying the answer ("landed, answer lost");
- ``DELAY``: forward, then wait ``delay`` seconds before relaying the answer.

Only loopback: the proxy binds 127.0.0.1 and connects only to the upstream it was given.
"""

from __future__ import annotations

import contextlib
import enum
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Action", "FaultProxy", "Request"]


class Action(enum.Enum):
    PASS = "pass"
    REFUSE = "refuse"
    SILENCE = "silence"
    DROP = "drop"
    DELAY = "delay"


@dataclass(frozen=True)
class Request:
    """One request the proxy saw: number, method, path and what was done with it."""

    index: int
    method: str
    path: str
    action: Action


Plan = Callable[[int], Action]


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed or refusing peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_request(sock: socket.socket) -> bytes | None:
    """Read one whole HTTP request (head and body); None if the client went away."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
    else:
        length = int(headers.get(b"content-length", b"0") or 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
    kept = [lines[0]] + [
        line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() != b"connection"
    ]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body


@dataclass
class FaultProxy:
    """The proxy; ``endpoint`` is its URL. Start with ``start()``, stop with ``stop()``."""

    upstream: tuple[str, int]
    delay: float = 0.5
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.upstream[0] not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy only forwards to loopback")
        self._plan: Plan = lambda _i: Action.PASS
        self._count = 0
        self._guard = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    @classmethod
    def for_endpoint(cls, endpoint: str, **kwargs: float) -> FaultProxy:
        host, _, port = endpoint.removeprefix("http://").rstrip("/").partition(":")
        return cls((host, int(port)), **kwargs)

    # -- control ------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        # close() alone does not wake a thread blocked in accept() on Linux (stop() then
        # waited the whole join timeout, 5 s per test); shutdown() makes accept() fail now.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._guard:
            for sock in list(self._open):
                _reset(sock)
            self._open.clear()
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            raise RuntimeError("the fault proxy's accept thread did not stop")

    def plan(self, plan: Plan) -> None:
        """Decide the action of each request from now on (numbered from the last ``reset``)."""
        with self._guard:
            self._plan = plan

    def fail(self, action: Action, at: int = 0, times: int = 1) -> None:
        """Requests ``at`` .. ``at + times - 1`` get ``action``; all others pass."""
        self.plan(lambda i: action if at <= i < at + times else Action.PASS)

    def heal(self) -> None:
        """Let every request through again, and wake up the silenced ones (they are reset)."""
        self.plan(lambda _i: Action.PASS)
        with self._guard:
            for sock in list(self._open):
                _reset(sock)
            self._open.clear()

    def reset(self) -> None:
        """Heal, forget the request log and number requests from 0 again."""
        self.heal()
        with self._guard:
            self._count = 0
            self.requests.clear()

    # -- serving ------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with self._guard:
            index = self._count
            self._count += 1
            action = self._plan(index)
        if action is Action.REFUSE:
            self._log(index, b"? ? ", action)
            _reset(client)
            return
        try:
            request = _read_request(client)
        except OSError:
            request = None
        if request is None:
            client.close()
            return
        self._log(index, request, action)
        if action is Action.SILENCE:
            with self._guard:
                self._open.add(client)
            return  # held open until the client gives up, heal() or stop()
        try:
            response = self._forward(request)
        except OSError:
            _reset(client)
            return
        if action is Action.DROP:
            _reset(client)
            return
        if action is Action.DELAY:
            time.sleep(self.delay)
        with contextlib.suppress(OSError):
            client.sendall(response)
        client.close()

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=30) as up:
            up.sendall(request)
            parts = []
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                parts.append(chunk)
        return b"".join(parts)

    def _log(self, index: int, request: bytes, action: Action) -> None:
        method, _, rest = request.partition(b" ")
        path = rest.partition(b" ")[0]
        with self._guard:
            self.requests.append(
                Request(index, method.decode("latin-1"), path.decode("latin-1"), action)
            )

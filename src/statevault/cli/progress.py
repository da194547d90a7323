"""Progress of a long command (restore, rotate-keys) on a terminal: one redrawn stderr line.

Drawn only when stderr is a terminal and the command does not print ``--json``: piped output
and scripts see nothing of it. A ticker thread redraws the elapsed time every half second, so
a single slow step (a large write to S3) still shows that the command is alive; the line is
erased when the command ends, whatever the outcome.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO

__all__ = ["Progress"]

_TICK = 0.5


class Progress:
    """``with Progress("restore", enabled=...) as p: p.step("reading", 1, 2) ...``."""

    def __init__(self, label: str, *, enabled: bool, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.current = ""
        self.started = time.monotonic()
        self.guard = threading.Lock()
        self.stopped = threading.Event()
        self.ticker: threading.Thread | None = None
        self.width = 0

    @classmethod
    def for_command(
        cls, label: str, *, json_output: bool, stream: IO[str] | None = None
    ) -> Progress:
        """Enabled when ``stream`` (default stderr) is a terminal and the output is not JSON."""
        out = stream if stream is not None else sys.stderr
        isatty = getattr(out, "isatty", None)
        tty = bool(isatty()) if callable(isatty) else False
        return cls(label, enabled=tty and not json_output, stream=out)

    def step(self, text: str, done: int | None = None, total: int | None = None) -> None:
        """Show ``text`` (with ``[done/total]`` when given) as the current step."""
        if total is not None and done is not None:
            text = f"[{done}/{total}] {text}"
        with self.guard:
            self.current = text
        self.draw()

    def draw(self) -> None:
        if not self.enabled:
            return
        with self.guard:
            elapsed = time.monotonic() - self.started
            line = f"statevault {self.label}: {self.current}  {elapsed:.1f}s"
            pad = " " * max(0, self.width - len(line))
            self.width = len(line)
            self.stream.write("\r" + line + pad)
            self.stream.flush()

    def tick(self) -> None:
        while not self.stopped.wait(_TICK):
            self.draw()

    def __enter__(self) -> Progress:
        if self.enabled:
            self.ticker = threading.Thread(
                target=self.tick, name="statevault-progress", daemon=True
            )
            self.ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopped.set()
        if self.ticker is not None:
            self.ticker.join()
        if self.enabled and self.width:
            with self.guard:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()

"""The failover spool: a local copy of saves that could not reach the primary storage.

When a save to the primary fails for a storage reason (unreachable, permission denied, disk
full), the manager writes the same frame bytes here, on the local machine, so nothing that the
process tried to save is lost. The next successful save (or ``flush_spool()``) makes the
primary current again and empties the spool; a load takes whichever of primary and spool has
the higher generation.

One spool file per state URL: ``<spool_dir>/<sha256(url)[:24]>.state``, beside a ``.url`` text
file naming the URL for a person looking at the directory and a ``.base`` JSON file recording
what the spooled save was based on (the primary's token and generation this writer last saw,
or ``known: false`` when it never reached the primary): a flush pushes only over that base.
Spool files are frames exactly like the primary (compressed and encrypted the same way,
written atomically with mode 0600).
Neither file is ever reached through a symbolic link: a link planted at either name is
refused on read and replaced (not followed) on write; the directory is created 0700.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from .storage import ANY, ObjectInfo, Store
from .storage.local import NEW_FILE_MODE, LocalStore
from .transforms import Buffer

__all__ = ["Spool", "default_spool_dir"]

log = logging.getLogger("statevault")


def default_spool_dir() -> Path:
    """``$STATEVAULT_SPOOL_DIR``, else ``$XDG_STATE_HOME/statevault/spool``, else
    ``~/.local/state/statevault/spool``: per user, outside any project checkout."""
    explicit = os.environ.get("STATEVAULT_SPOOL_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "statevault" / "spool"


class Spool:
    """The spool file of one state URL. Not locked against other processes beyond what the
    local store does (atomic replace under an OS lock): the newest write wins."""

    def __init__(self, directory: str | os.PathLike[str], url: str) -> None:
        self.directory = Path(directory).expanduser()
        self.url = url
        name = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
        self.path = self.directory / f"{name}.state"
        self._store: Store = LocalStore(str(self.path), follow_symlinks=False)

    @property
    def store(self) -> Store:
        """The local store holding the spool file."""
        return self._store

    def put(self, chunks: Sequence[Buffer], base: dict[str, Any] | None = None) -> ObjectInfo:
        """Write a frame to the spool (atomic; replaces any older spooled frame).

        ``base``: what the save was based on (``{"token": ..., "generation": ...}`` as this
        writer last saw the primary), None when unknown. A base that cannot be recorded is
        removed, so the spooled frame counts as based on nothing known (kept, never dropped).
        """
        info = self._store.write(chunks, expect=ANY)
        record = {"known": base is not None, **(base or {})}
        try:
            self._write_side(".base", json.dumps(record).encode("utf-8"))
        except OSError as e:
            log.warning("could not record the base of %s: %s", self.path, e)
            with suppress(OSError):
                self.path.with_suffix(".base").unlink()
        try:
            self._write_side(".url", (self.url + "\n").encode("utf-8"))
        except OSError as e:  # the label is for people; the spooled frame is what matters
            log.warning("could not write %s: %s", self.path.with_suffix(".url"), e)
        return info

    def base(self) -> dict[str, Any] | None:
        """What the spooled save was based on (``token``, ``generation``); None if unknown
        (it never reached the primary, or the record is missing or unreadable)."""
        try:
            path = self.path.with_suffix(".base")
            if path.is_symlink():
                return None
            record = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or not record.get("known"):
            return None
        return record

    def _write_side(self, suffix: str, text: bytes) -> None:
        """Write a side file beside the spool file: 0600, atomically, never via a link."""
        label = self.path.with_suffix(suffix)
        with suppress(OSError):
            if not label.is_symlink() and label.read_bytes() == text:
                return
        tmp = label.with_name(f".{label.name}.tmp-{os.getpid()}-{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(tmp, flags, NEW_FILE_MODE)
        try:
            os.fchmod(fd, NEW_FILE_MODE)  # whatever the umask
            os.write(fd, text)
            os.close(fd)
            fd = -1
            os.replace(tmp, label)  # replaces a link at the name, never follows it
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with suppress(OSError):
                os.unlink(tmp)
            raise

    def info(self) -> ObjectInfo | None:
        """The spool file's info, or None when nothing is spooled."""
        return self._store.info()

    def clear(self) -> None:
        """Remove the spooled frame (after it reached the primary or was superseded)."""
        self._store.delete()
        for suffix in (".url", ".base"):
            try:
                self.path.with_suffix(suffix).unlink(missing_ok=True)
            except OSError as e:  # side files only describe the frame: leftovers are harmless
                log.warning("could not remove %s: %s", self.path.with_suffix(suffix), e)

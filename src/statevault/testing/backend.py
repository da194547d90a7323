"""``Backend``: where a conformance suite's objects live, and a way to reach them directly.

A suite opens stores through statevault (``open``) and checks what they did through the
backend's own API (``get_raw``/``put_raw``/``delete_raw``), so a store that only agrees with
itself (writes somewhere else, caches, mangles bytes) cannot pass. The defaults reach the
objects through fsspec's filesystem for the URL, not through the store under test; override
them with the backend's native client where you have one (statevault's own tests use plain
file I/O for local files and a botocore client for S3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..storage import Store, open_store

__all__ = ["Backend", "LocalBackend"]


@dataclass
class Backend:
    """Where one backend's test objects live: ``url(name)``, ``open(name)``, raw access.

    ``base`` is a URL or path prefix (object names are appended); ``storage_options`` go to
    ``open_store`` and to fsspec.
    """

    name: str
    base: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def url(self, name: str = "state.bin") -> str:
        return self.base + name

    def open(self, name: str = "state.bin") -> Store:
        """The store under test for object ``name``."""
        return open_store(self.url(name), self.storage_options or None)

    def _fs(self, name: str) -> tuple[Any, str]:
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url(name), **dict(self.options()))
        return fs, str(path)

    def options(self) -> Mapping[str, Any]:
        """fsspec options for raw access (the store's ``storage_options`` by default)."""
        return self.storage_options

    def get_raw(self, name: str = "state.bin") -> bytes | None:
        """The object's bytes read directly from the backend, None if there is none."""
        fs, path = self._fs(name)
        try:
            data: bytes = fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data

    def put_raw(self, name: str, data: bytes) -> None:
        """Replace (or create) the object directly, as another program would."""
        fs, path = self._fs(name)
        parent = path.rpartition("/")[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)  # a no-op on object stores
        fs.pipe_file(path, data)

    def delete_raw(self, name: str = "state.bin") -> None:
        """Delete the object directly; no error if it does not exist."""
        fs, path = self._fs(name)
        with suppress(FileNotFoundError):
            fs.rm_file(path)


class LocalBackend(Backend):
    """A local directory, reached with plain file I/O."""

    def __init__(self, directory: str | os.PathLike[str], name: str = "local") -> None:
        super().__init__(name, f"{os.fspath(directory)}/")

    def get_raw(self, name: str = "state.bin") -> bytes | None:
        try:
            return Path(self.url(name)).read_bytes()
        except FileNotFoundError:
            return None

    def put_raw(self, name: str, data: bytes) -> None:
        # Replaced, not rewritten in place: a retained version may be a hard link to the file.
        path = Path(self.url(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.raw")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def delete_raw(self, name: str = "state.bin") -> None:
        Path(self.url(name)).unlink(missing_ok=True)

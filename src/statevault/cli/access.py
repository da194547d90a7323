"""What every command needs from its arguments: the URL, keys, storage options, a view.

With no URL argument the commands use ``STATEVAULT_URL``; keys come from ``--key`` /
``--key-file`` or, through the library, ``STATEVAULT_KEY`` / ``STATEVAULT_KEY_FILE``; storage
options from ``--storage-options`` or ``STATEVAULT_STORAGE_OPTIONS``. Public names only, so
that every command module may use them.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..errors import CorruptStateError, StateError, StateNotFoundError
from ..frame import FrameHeader
from ..inspection import KeepVersionsMismatch, StateView, open_state
from ..manager import StateManager
from ..trading import TradingStateManager
from .parser import EXIT_OK, UsageError
from .render import to_json

__all__ = [
    "check_ring",
    "compressor",
    "key_ids",
    "manager_options",
    "not_retained",
    "open_view",
    "print_json",
    "state_url",
    "storage_options",
    "writer",
]


def storage_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--storage-options`` or ``STATEVAULT_STORAGE_OPTIONS`` as a dict (``UsageError``)."""
    raw = args.storage_options
    source = "--storage-options"
    if raw is None:
        raw = os.environ.get("STATEVAULT_STORAGE_OPTIONS", "")
        source = "STATEVAULT_STORAGE_OPTIONS"
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as e:
        raise UsageError(f"{source} is not valid JSON: give a JSON object ({e})") from e
    if not isinstance(parsed, dict):
        raise UsageError(f"{source} must be a JSON object, like '{{\"anon\": true}}'")
    return parsed


def state_url(args: argparse.Namespace) -> str:
    """The URL argument, else ``STATEVAULT_URL`` (``UsageError`` when neither is given)."""
    url = getattr(args, "url", None) or os.environ.get("STATEVAULT_URL", "")
    if not url:
        raise UsageError("give the state's URL, or set STATEVAULT_URL")
    return str(url)


def print_json(data: Any) -> int:
    print(json.dumps(to_json(data), indent=2))
    return EXIT_OK


def manager_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for a manager; with no key flags the manager reads STATEVAULT_KEY."""
    options: dict[str, Any] = {"storage_options": storage_options(args)}
    if args.key:
        options["encryption_key"] = list(args.key)
    if args.key_file:
        options["key_file"] = args.key_file
    keep = getattr(args, "keep_versions", None)
    if keep is not None:
        options["keep_versions"] = keep
    return options


def open_view(args: argparse.Namespace) -> StateView:
    return open_state(state_url(args), **manager_options(args))


def check_ring(view: StateView) -> list[dict[str, Any]]:
    """``view.versions()``; a ``keep_versions`` mismatch is a usage error saying what to do."""
    try:
        return view.versions()
    except KeepVersionsMismatch as e:
        raise UsageError(
            f"{e}: give the value the application uses with --keep-versions N"
        ) from None


def not_retained(view: StateView, version: int, url: str) -> StateError:
    """The error for a version that cannot be read: no state at all, or not (any more) kept.

    Raises ``UsageError`` instead when the cause is a ``--keep-versions`` mismatch.
    """
    versions = check_ring(view)
    if not versions and not view.exists():
        return StateNotFoundError(f"No state is stored at {view.url}: check the URL.")
    kept = ", ".join(str(v["generation"]) for v in versions) or "none"
    return StateNotFoundError(
        f"version {version} of {view.url} is not retained (retained: {kept}): run "
        f"`statevault history {url}` to see the versions kept"
    )


def writer(
    args: argparse.Namespace, probe: StateView, header: FrameHeader, what: str
) -> StateManager:
    """A manager that saves like the writer of ``header``: same kind, schema version (no
    migration runs again) and compressor; no spool (the write goes to the URL or fails)."""
    schema = header.meta.get("schema_version", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise CorruptStateError(f"{what} of {probe.url} has schema_version {schema!r}, not an int")
    cls = (
        TradingStateManager if header.meta.get("kind") == TradingStateManager.kind else StateManager
    )
    return cls(
        state_url(args),
        spool_dir=False,
        schema_version=schema,
        compression=compressor(probe, header),
        **manager_options(args),
    )


def key_ids(view: StateView, info: dict[str, Any]) -> dict[str, str]:
    """The key ids the header names (stored in clear, see docs/encryption.md): ``{"encryption":
    id}`` and/or ``{"signing": id}``; empty for an unencrypted, unsigned state or plain JSON."""
    if not info.get("readable"):
        return {}
    out: dict[str, str] = {}
    for entry in view.header().transforms:
        key_id = entry.get("key_id")
        props = view.transform_registry.properties(str(entry.get("name")))
        if not isinstance(key_id, str) or props is None:
            continue
        if props.encrypts:
            out["encryption"] = key_id
        elif props.authenticates:
            out["signing"] = key_id
    return out


def compressor(probe: StateView, header: FrameHeader) -> str | None:
    """The compressor a stored frame names (by its declared property, not its name), if any."""
    for entry in header.transforms:
        name = str(entry.get("name"))
        props = probe.transform_registry.properties(name)
        if props is not None and props.compresses:
            return name
    return None

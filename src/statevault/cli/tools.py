"""``statevault diff`` and ``statevault rotate-keys``: built on the public API only.

``diff`` reads two states through ``statevault.open_state`` and compares them with
``statevault.diff.diff_states``; ``rotate-keys`` writes through ``StateManager.rotate_keys``
and reads every header back to say which key each version is under now.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..diff import diff_states
from ..errors import StateNotFoundError
from ..inspection import StateView, VersionNotRetained
from .access import check_ring, key_ids, not_retained, open_view, print_json, state_url, writer
from .diffview import diff_json, render_diff
from .parser import EXIT_ERROR, EXIT_OK, UsageError
from .progress import Progress

__all__ = ["cmd_diff", "cmd_rotate_keys"]


def _previous(view: StateView, current: int | None) -> int:
    """The newest retained generation older than ``current`` (``StateNotFoundError`` if none)."""
    older: list[int] = [
        int(v["generation"])
        for v in check_ring(view)
        if current is None or v["generation"] < current
    ]
    if not older:
        raise StateNotFoundError(
            f"{view.url} has no retained version older than the current state: nothing to "
            "compare with (states saved with keep_versions=0 keep none)"
        )
    return max(older)


def _diff_arguments(args: argparse.Namespace) -> tuple[str | None, list[int]]:
    """``[URL] [V1] [V2]``: whole numbers are versions (write ./3 for a file named 3)."""
    words = list(args.operands)
    url = None
    if words and not words[0].isdigit():
        url = words.pop(0)
    if len(words) > 2:
        raise UsageError("give at most two versions: statevault diff [URL] [V1] [V2]")
    versions: list[int] = []
    for word in words:
        if not word.isdigit() or int(word) < 1:
            raise UsageError(
                f"{word!r} is not a version: give a generation from `statevault history`"
            )
        versions.append(int(word))
    return url, versions


def cmd_diff(args: argparse.Namespace) -> int:
    """``statevault diff [URL] [V1] [V2]``: what changed between two versions.

    No version: the newest retained version before the current state vs the current state;
    one: that version vs the current state; two: V1 vs V2. Read-only.
    """
    url, versions = _diff_arguments(args)
    args.url = url
    view = open_view(args)

    def side(version: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        if version is None:
            doc = view.read()
            generation = doc.header.generation if doc.header is not None else None
            return doc.state, {"version": None, "generation": generation}
        try:
            return view.load(version).state, {"version": version, "generation": version}
        except VersionNotRetained as e:
            raise not_retained(view, version, state_url(args)) from e

    if len(versions) == 2:
        (a, a_label), (b, b_label) = side(versions[0]), side(versions[1])
    else:
        b, b_label = side(None)
        first = versions[0] if versions else _previous(view, b_label["generation"])
        a, a_label = side(first)
    diff = diff_states(a, b, limit=args.limit)
    if args.json:
        return print_json({"url": view.url, **diff_json(diff, a_label, b_label)})

    def name(label: dict[str, Any]) -> str:
        if label["version"] is None:
            generation = label["generation"]
            return "current" + (f" (generation {generation})" if generation is not None else "")
        return f"version {label['version']}"

    print("\n".join(render_diff(diff, f"{view.url}: {name(a_label)} -> {name(b_label)}")))
    return EXIT_OK


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    """``statevault rotate-keys [URL] --key NEW --key OLD``: re-encrypt with the first key.

    ``StateManager.rotate_keys()``: the current state is saved again (a new generation) and
    every retained version rewritten in place. Afterwards each header is read back: a
    version still under another key (it could not be rewritten) is an error (status 1).
    """
    probe = open_view(args)
    versions = check_ring(probe)
    header = probe.header()
    mgr = writer(args, probe, header, "the current state")
    if not mgr.encrypted:
        raise UsageError("rotate-keys needs the keys, newest first: --key NEW --key OLD")
    progress = Progress.for_command("rotate-keys", json_output=args.json)
    with progress:
        progress.step(f"re-encrypting the current state ({len(versions)} retained version(s))")

        def rewriting(done: int, total: int) -> None:
            progress.step("re-encrypting the retained versions", done + 1, total)

        generation = mgr.rotate_keys(progress=rewriting)
    key_id = key_ids(probe, probe.info()).get("encryption")
    after = []
    for v in check_ring(probe):
        ids = [e.get("key_id") for e in probe.header(v["generation"]).transforms if "key_id" in e]
        after.append({"generation": v["generation"], "key_id": ids[0] if ids else None})
    left = [v for v in after if v["key_id"] != key_id]
    if args.json:
        print_json(
            {
                "url": mgr.url,
                "generation": generation,
                "key_id": key_id,
                "versions": after,
                "not_rotated": [v["generation"] for v in left],
            }
        )
    else:
        print(
            f"re-encrypted {mgr.url} with key id {key_id}: current state saved as generation "
            f"{generation}, {len(after) - len(left)} of {len(after)} retained versions rewritten"
        )
    if left:
        names = ", ".join(f"{v['generation']} (key id {v['key_id']})" for v in left)
        print(
            f"statevault rotate-keys: versions {names} are still under an old key: keep it "
            "until they are pruned, or check them with statevault show --version N",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return EXIT_OK

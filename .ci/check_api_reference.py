"""Check the built API reference: it documents the public API and no private name.

``python .ci/check_api_reference.py SITE_DIR`` reads SITE_DIR/api/index.html (mkdocstrings
gives every documented object an ``id`` that is its dotted path) and fails when a
``statevault.__all__`` name is missing, or when any path has a ``_private`` part.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import statevault


def main(site: str) -> int:
    html = (Path(site) / "api" / "index.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'id="(statevault(?:\.[A-Za-z0-9_]+)*)"', html))
    private = sorted(
        i for i in ids if any(p.startswith("_") and not p.endswith("__") for p in i.split("."))
    )
    missing = sorted(
        n for n in statevault.__all__ if f"statevault.{n}" not in ids and not n.startswith("__")
    )
    for name in private:
        print(f"api reference: private name shown: {name}", file=sys.stderr)
    for name in missing:
        print(f"api reference: public name missing: statevault.{name}", file=sys.stderr)
    if private or missing:
        return 1
    print(f"api reference: {len(ids)} documented objects, none private")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))

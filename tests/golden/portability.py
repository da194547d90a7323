"""Cross-stack portability: ``write DIR`` saves every family this stack can build into DIR;
``check DIR...`` loads each file exactly, saves it again and loads that (see corpus.check).

.ci/stacks runs ``write`` on every stack, then ``check`` on every stack over the others' folders.
Exit code 1 on the first difference, with the family and the path inside the value.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("write", "check"):
        print("usage: portability.py write DIR | check DIR...", file=sys.stderr)
        return 2
    if argv[0] == "write":
        written = corpus.write(Path(argv[1]), overwrite=True)
        print(f"portability: wrote {len(written)} families to {argv[1]}: {', '.join(written)}")
        return 0
    for folder in map(Path, argv[1:]):
        results = corpus.check(folder)
        if not results:
            print(f"portability: {folder} holds no golden files", file=sys.stderr)
            return 1
        for name, outcome in results.items():
            print(f"portability: {folder.name}/{name}: {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

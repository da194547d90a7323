"""Write the golden state files of every family that has none yet (tests/golden/files/).

Run it once, with pytz, python-dateutil and pyarrow installed, after adding a family
(``python tests/golden/make_golden.py``), and commit the new files. Existing files are never
rewritten: they are what earlier releases wrote, and the compatibility promise is that every
later release loads them exactly (docs/format.md). ``--rewrite`` exists only for a family
added in the same, unreleased change.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=corpus.FILES)
    parser.add_argument("--rewrite", nargs="*", default=[], metavar="FAMILY")
    args = parser.parse_args(argv)
    for name in args.rewrite:
        (args.out / f"{name}{corpus.SUFFIX}").unlink(missing_ok=True)
    written = corpus.write(args.out)
    missing = [n for n in corpus.families() if not (args.out / f"{n}{corpus.SUFFIX}").exists()]
    print(f"wrote {len(written)}: {', '.join(written) or '-'}")
    if missing:
        print(f"not written (library missing here): {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Plot save time and stored bytes by state size, statevault beside the baselines.

``python -m bench.plot RESULTS.json [--out docs/img/bench.png]`` reads what
``python -m bench.run --json RESULTS.json`` wrote and draws two panels (log scale): the median
save time and the stored bytes of every method, one group of bars per state size. Needs
matplotlib (``pip install -e '.[bench]'``). The figure is small (about 100 KiB) so that the docs
can keep it in git (docs/img/bench.png, shown on the performance page).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: Methods drawn, in this order: the baselines first, then statevault with the same transforms.
METHODS = (
    "json-handwritten",
    "pickle5",
    "pickle5+fsync",
    "pickle5+zstd",
    "pickle5+zstd+fernet",
    "statevault",
    "statevault+zstd",
    "statevault+zstd+fernet",
    "statevault-trading full",
)


def series(results: dict[str, Any], key: str) -> tuple[list[str], dict[str, list[float | None]]]:
    """Per method, ``key`` of each size (None where the method did not run or failed)."""
    sizes = list(results["sizes"])
    out: dict[str, list[float | None]] = {}
    for method in METHODS:
        values: list[float | None] = []
        for size in sizes:
            rows = {r["method"]: r for r in results["sizes"][size]["rows"]}
            row = rows.get(method)
            ok = row is not None and row.get("status") == "ok" and row.get(key) is not None
            values.append(float(row[key]) if ok else None)
        if any(v is not None for v in values):
            out[method] = values
    return sizes, out


def plot(results: dict[str, Any], out: Path) -> None:
    """Write the two-panel PNG for ``results`` to ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    sizes, save = series(results, "save_s")
    _, stored = series(results, "stored_bytes")
    labels = [
        f"{s}: {results['sizes'][s]['pairs']} pairs x {results['sizes'][s]['bars']:,} bars"
        for s in sizes
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), dpi=90)
    width = 0.8 / max(len(save), 1)
    for ax, data, scale, title in (
        (axes[0], save, 1000.0, "save time, ms (median; log scale)"),
        (axes[1], stored, 1 / 2**20, "stored bytes, MiB (log scale)"),
    ):
        for i, method in enumerate(METHODS):
            if method not in data:
                continue
            xs = [j + (i - (len(METHODS) - 1) / 2) * width for j in range(len(sizes))]
            ys = [v * scale if v is not None else 0.0 for v in data[method]]
            hatch = "" if method.startswith("statevault") else "//"
            ax.bar(xs, ys, width, label=method, hatch=hatch, color=f"C{i}", edgecolor="white")
        ax.set_yscale("log")
        ax.set_xticks(range(len(sizes)), labels)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="lower center", ncols=5, frameon=False)
    machine = results.get("machine", {})
    loads = ", ".join(f"{s} {results['sizes'][s].get('loadavg_before', '?')}" for s in sizes)
    fig.suptitle(
        f"statevault vs baselines (hatched) - {machine.get('cores', '?')} cores, "
        f"python {machine.get('python', '?')}, load average before each size: {loads}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by python -m bench.run --json")
    parser.add_argument("--out", type=Path, default=Path("docs/img/bench.png"))
    args = parser.parse_args(argv)
    plot(json.loads(args.results.read_text()), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

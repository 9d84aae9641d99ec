"""Accuracy against FLOPs reduction for every method, across finished WGSEF studies (one per keep ratio).

Reads each study folder's run.json (config) and per_seed.json (one row per seed), plots every method's seed-mean
accuracy (± sd) at its measured FLOPs reduction, and prints a Markdown table with the paired per-seed difference
WGSEF − method (same seed, same data order) for each baseline.

    PYTHONPATH=src python benchmarks/wgsef_pareto.py runs/STUDY_A runs/STUDY_B ... --out docs/methods/x.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from sparsenets.experiments.wgsef.report import paired_differences

METHODS = ("wgsef", "group_lasso", "magnitude", "tp_groupnorm")


def load(study: Path) -> dict:
    """{'keep', 'schedule', 'rows' (per_seed.json), 'dense_flops'} of one finished study folder."""
    if not (study / "run.json").exists() or not (study / "per_seed.json").exists():
        raise SystemExit(
            f"{study} holds no run.json and per_seed.json: pass folders of finished WGSEF studies"
        )
    cfg = json.loads((study / "run.json").read_text())["config"]
    rows = json.loads((study / "per_seed.json").read_text())
    return {
        "keep": cfg["keep"],
        "schedule": f"{cfg['epochs']}+{cfg['finetune_epochs']}",
        "rows": rows,
        "dense_flops": rows[0]["dense"]["flops"],
    }


def merge(studies: list[dict]) -> list[dict]:
    """Pool the seeds of studies with the same keep ratio and schedule (each seed counted once), sorted by keep."""
    pooled: dict[tuple, dict] = {}
    for st in studies:
        key = (st["keep"], st["schedule"])
        if key not in pooled:
            pooled[key] = {**st, "rows": []}
        seen = {r["seed"] for r in pooled[key]["rows"]}
        pooled[key]["rows"] += [r for r in st["rows"] if r["seed"] not in seen]
    return [pooled[k] for k in sorted(pooled)]


def _span(seeds: list[int]) -> str:
    s = sorted(seeds)
    return f"{s[0]}–{s[-1]}" if s == list(range(s[0], s[-1] + 1)) and len(s) > 1 else ", ".join(map(str, s))


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def table(studies: list[dict]) -> str:
    """Markdown: per study and method, accuracy mean ± sd, FLOPs ÷, and WGSEF − method paired over seeds."""
    lines = [
        "| keep | epochs | seeds | method | accuracy | FLOPs ÷ | WGSEF − method (paired, pt) |",
        "|---|---|---|---|---|---|---|",
    ]
    for st in studies:
        rows = st["rows"]
        for m in ("dense", *METHODS):
            if not all(m in r for r in rows):
                continue
            acc = _mean_sd([r[m]["accuracy"] for r in rows])
            flops = st["dense_flops"] / statistics.fmean(r[m]["flops"] for r in rows)
            paired = paired_differences(rows, [m]).get(m)
            diff = f"{paired[0]:+.2f} ± {paired[1]:.2f}" if paired and m != "wgsef" else "—"
            lines.append(
                f"| {st['keep']:g} | {st['schedule']} | {_span([r['seed'] for r in rows])} | {m} | {acc[0]:.2f} ± {acc[1]:.2f} "
                f"| {flops:.2f} | {diff} |"
            )
    return "\n".join(lines)


def plot(studies: list[dict], out: Path) -> None:
    """Seed-mean accuracy ± sd against FLOPs reduction, one line per method, dense as a horizontal band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    dense = [r["dense"]["accuracy"] for st in studies for r in st["rows"]]
    ax.axhline(statistics.fmean(dense), color="gray", ls="--", label="dense (mean over studies)")
    for m in METHODS:
        pts = sorted(
            (
                st["dense_flops"] / statistics.fmean(r[m]["flops"] for r in st["rows"]),
                *_mean_sd([r[m]["accuracy"] for r in st["rows"]]),
            )
            for st in studies
            if all(m in r for r in st["rows"])
        )
        if pts:
            ax.errorbar(
                [p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker="o", capsize=3, label=m
            )
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs reduction (×, log)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    studies = merge([load(s) for s in args.studies])
    plot(studies, args.out)
    print(table(studies))


if __name__ == "__main__":
    main()

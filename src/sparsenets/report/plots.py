"""Figures the report draws itself from run logs (an experiment's own figures are copied as they are)."""

from __future__ import annotations

import math
import re
from pathlib import Path

from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.report.runs import read_jsonl

MAX_PANELS = 6
MAX_LINES = 12


def _series(runs: list[Path]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """metric name → curve label → (steps, values) from every metrics.jsonl under `runs` (finite values only)."""
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for run in runs:
        for log in sorted(run.rglob("metrics.jsonl")):
            where = str(log.parent.relative_to(run)) if log.parent != run else "run"
            label = f"{run.name}/{where}" if len(runs) > 1 else where
            for rec in read_jsonl(log):
                step = rec.get("step")
                if not isinstance(step, int | float):
                    continue
                for k, v in rec.items():
                    if k in ("step", "split", "lr") or isinstance(v, bool) or not isinstance(v, int | float):
                        continue
                    if not math.isfinite(v):
                        continue
                    # "test_accuracy/3" (member 3 of a stacked ensemble) is one more curve of test_accuracy
                    base, _, member = k.rpartition("/")
                    key, who = (base, f"{label} #{member}") if base and member.isdigit() else (k, label)
                    name = f"{rec.get('split', '')} {key}".strip()
                    xs, ys = series.setdefault(name, {}).setdefault(who, ([], []))
                    xs.append(step)
                    ys.append(v)
    return series


def _panel_order(name: str) -> tuple[bool, list[str | int]]:
    """Training loss first, then by name with numbers in numeric order (2 before 10)."""
    natural = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
    return name != "train loss", natural


def plot_curves(runs: Path | list[Path], dest: Path) -> Path | None:
    """Learning curves of every metrics.jsonl under `runs`: train loss and each eval metric against step.

    Returns:
        `dest`, or None when there is no curve to draw, i.e. no series with two steps (then no file is written).
    """
    series = _series([runs] if isinstance(runs, Path) else list(runs))
    # one logged point is no curve: keep series with at least two steps, and panels with such a series
    series = {
        name: kept
        for name, curves in series.items()
        if (kept := {label: xy for label, xy in curves.items() if len(set(xy[0])) >= 2})
    }
    names = sorted(series, key=_panel_order)[:MAX_PANELS]
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    wide = any(len(series[n]) > 4 for n in names)  # room for legends beside the panels
    cols = min(2 if wide else 3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=((6.6 if wide else 4.4) * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        curves = sorted(series[name].items(), key=lambda kv: _panel_order(kv[0])[1])[:MAX_LINES]
        for label, (xs, ys) in curves:
            # a short curve is hard to see as a line alone: mark its points
            ax.plot(
                xs, ys, marker="o" if len(xs) < 6 else None, ms=3, label=label if len(curves) > 1 else None
            )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.grid(alpha=0.3)
        if "loss" in name and all(y > 0 for _, (_, ys) in curves for y in ys):
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        if len(curves) > 4:  # many curves: the legend beside the panel, not over the data
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        elif len(curves) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=90)
    plt.close(fig)
    return dest

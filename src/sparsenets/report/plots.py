"""Figures the report draws itself from run logs (an experiment's own figures are copied as they are)."""

from __future__ import annotations

from pathlib import Path

from sparsenets.report.runs import read_jsonl


def plot_curves(run: Path, dest: Path) -> Path | None:
    """Learning curves of every metrics.jsonl under `run`: train loss and each eval metric against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = sorted(run.rglob("metrics.jsonl"))
    if not logs:
        return None
    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for log in logs:
        label = str(log.parent.relative_to(run)) if log.parent != run else "run"
        for rec in read_jsonl(log):
            for k, v in rec.items():
                if k in ("step", "split", "lr") or not isinstance(v, int | float):
                    continue
                name = f"{rec.get('split', '')} {k}".strip()
                xs, ys = series.setdefault(name, {}).setdefault(label, ([], []))
                xs.append(rec["step"])
                ys.append(v)
    names = sorted(series)[:6]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        for label, (xs, ys) in sorted(series[name].items())[:12]:
            ax.plot(xs, ys, label=label if len(series[name]) > 1 else None)
        ax.set_title(name)
        ax.set_xlabel("step")
        if "loss" in name:
            ax.set_yscale("log")
        if len(series[name]) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=100)
    plt.close(fig)
    return dest

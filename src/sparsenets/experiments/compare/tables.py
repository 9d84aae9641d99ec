"""The comparison's table, Pareto plots and verdicts from its compression records."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from sparsenets.compare import CompressionRecord, adapters
from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.runs import RunContext, md_table

SPEEDUP_FLOOR = 0.7  # the bar: measured b64 speedup >= 0.7 × FLOPs reduction for structured methods


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(
    records: list[CompressionRecord], latency: dict[str, Any] | None = None
) -> dict[tuple[str, str, float], dict[str, Any]]:
    """(model, method, keep) → seed means (± std for accuracy) of every headline number; with `latency`
    ("model/keep" → `measure_budget` dict, timed on a quiet machine after training) structured methods take
    their latency from it instead of from the records (timed while other jobs trained)."""
    groups: dict[tuple[str, str, float], list[CompressionRecord]] = defaultdict(list)
    for r in records:
        groups[(r.model, r.method, r.keep)].append(r)
    out = {}
    for key, rs in groups.items():
        acc, acc_sd = _mean_std([r.accuracy for r in rs])
        dense, dense_sd = _mean_std([r.accuracy_dense for r in rs])
        out[key] = {
            "seeds": len(rs),
            "structured": rs[0].structured,
            "accuracy": acc,
            "accuracy_std": acc_sd,
            "accuracy_dense": dense,
            "accuracy_dense_std": dense_sd,
            "flops_reduction": statistics.fmean(r.flops_reduction for r in rs),
            "params_reduction": statistics.fmean(r.params_reduction for r in rs),
            "speedup_b64": statistics.fmean(r.speedup_b64 for r in rs),
            "speedup_b1": statistics.fmean(r.latency_b1_dense / r.latency_b1 for r in rs),
            "latency_b64_ms": 1e3 * statistics.fmean(r.latency_b64 for r in rs),
            "latency_b64_dense_ms": 1e3 * statistics.fmean(r.latency_b64_dense for r in rs),
            "kept": rs[0].kept,
        }
        quiet = (latency or {}).get(f"{key[0]}/{key[2]:g}")
        if (
            quiet is not None
        ):  # both models in the default (NCHW) layout, timed interleaved on a quiet machine
            t = out[key]
            t["latency_b64_dense_ms"] = 1e3 * quiet["latency_b64_dense"]
            if t["structured"]:
                t["latency_b64_ms"] = 1e3 * quiet["latency_b64_compact"]
                t["speedup_b64"], t["speedup_b1"] = quiet["speedup_b64"], quiet["speedup_b1"]
            else:
                t["latency_b64_ms"] = t["latency_b64_dense_ms"]
    return out


def _acc(mean: float, std: float, seeds: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if seeds > 1 else f"{mean:.2f}"


def _table(
    agg: dict, model: str, label: str, keeps: list[float], reductions: tuple[float, ...], note: str
) -> str:
    names = {n: a.label for n, a in adapters().items()}
    rows = []
    dense = [v for (m, _, _), v in agg.items() if m == model]
    if dense:
        d = dense[0]
        rows.append(["dense", "—", _acc(d["accuracy_dense"], d["accuracy_dense_std"], d["seeds"]), "1.00×", "1.00×",
                     f"{d['latency_b64_dense_ms']:.2f} ms", "1.00×"])  # fmt: skip
    for keep, red in zip(keeps, reductions):
        for (m, method, k), v in sorted(agg.items(), key=lambda kv: (kv[0][1] != "wgsef", kv[0][1])):
            if m != model or k != keep:
                continue
            speed = f"{v['speedup_b64']:.2f}×" if v["structured"] else "— (masks)"
            rows.append([names.get(method, method), f"~{red:g}× ({keep:g})",
                         _acc(v["accuracy"], v["accuracy_std"], v["seeds"]), f"{v['flops_reduction']:.2f}×",
                         f"{v['params_reduction']:.2f}×", f"{v['latency_b64_ms']:.2f} ms", speed])  # fmt: skip
    header = ["method", "budget (keep)", "accuracy %", "FLOPs ↓", "params ↓", "b64 latency", "b64 speedup"]
    return f"**{label}** ({note})\n\n" + md_table(header, rows)


def _plot(ctx: RunContext, agg: dict, labels: dict[str, str], x_key: str, xlabel: str, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {n: a.label for n, a in adapters().items()}
    models = list(labels)
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        items = {k: v for k, v in agg.items() if k[0] == model and v["structured"]}
        if not items:
            continue
        d = next(iter(items.values()))
        dense_x = 1.0 if x_key == "flops" else d["latency_b64_dense_ms"]
        ax.plot([dense_x], [d["accuracy_dense"]], "k*", ms=12, label="dense")
        for method in sorted({k[1] for k in items}):
            pts = sorted((1.0 / v["flops_reduction"] if x_key == "flops" else v["latency_b64_ms"], v["accuracy"],
                          v["accuracy_std"]) for k, v in items.items() if k[1] == method)  # fmt: skip
            xs, ys, es = zip(*pts)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=names.get(method, method))
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(labels[model])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, name)


def verdicts(agg: dict, quick: bool) -> list[str]:
    """The issue's latency bar per structured method and budget on every model (none for a smoke run)."""
    if quick:
        return ["Smoke run (--quick): one seed on 4k images; no verdict on any claim."]
    out = []
    for (model, method, keep), v in sorted(agg.items()):
        if not v["structured"]:
            continue
        ok = v["speedup_b64"] >= SPEEDUP_FLOOR * v["flops_reduction"]
        out.append(f"{model} {method} keep {keep:g}: b64 speedup {v['speedup_b64']:.2f}× vs "
                   f"{SPEEDUP_FLOOR} × {v['flops_reduction']:.2f}× FLOPs ↓: {'meets' if ok else 'misses'} the bar")  # fmt: skip
    return out


def write_tables(
    ctx: RunContext,
    records: list[CompressionRecord],
    labels: dict[str, str],
    keeps: dict[str, list[float]],
    reductions: dict[str, tuple[float, ...]],
    latency: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the comparison table (report.md), the two Pareto figures and return the run's metrics."""
    agg = aggregate(records, latency)
    seeds = max((v["seeds"] for v in agg.values()), default=0)
    seeds_note = "smoke run: one seed, no verdict" if ctx.quick else f"{seeds} seed(s), mean ± std"
    parts = [_table(agg, m, labels[m], keeps[m], reductions[m], seeds_note) for m in labels]
    parts += ["Every method at the same budgets on the same dense model per seed (the dense reference trains as "
              "long as every method); each record (records.json) lists the groups kept per prunable layer (IMP: its "
              "weights, keep² of them), always exactly the budget. Latency: "
              "median CPU forward (one thread) of a batch of 64, dense and compacted both in NCHW, timed interleaved "
              "after all training (channels-last times are in latency.json); structured methods at one budget "
              "share the same layer widths, so one measurement serves them.",
              "### Verdicts", "\n".join(f"- {v}" for v in verdicts(agg, ctx.quick))]  # fmt: skip
    ctx.write_report("\n\n".join(parts) + "\n")
    _plot(ctx, agg, labels, "flops", "FLOPs relative to dense (log)", "pareto-flops")
    _plot(ctx, agg, labels, "latency", "batch-64 CPU latency, ms (log)", "pareto-latency")
    return {
        f"{m}.{method}.keep{k:g}": {key: v[key] for key in ("accuracy", "accuracy_std", "flops_reduction",
                                                          "params_reduction", "speedup_b64", "speedup_b1")}
        for (m, method, k), v in agg.items()
    } | {"keeps": keeps, "records": len(records)}  # fmt: skip

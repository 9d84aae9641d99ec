"""Summary over seeds, figures and the Markdown report of a WGSEF study."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from sparsenets.experiments.wgsef.methods import BASELINES, METHODS


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Seed means and standard deviations of accuracy per method, plus FLOPs/params and speedups."""
    summary: dict[str, Any] = {}
    for name in [m for m in METHODS if m in per_seed[0]]:
        accs = [r[name]["accuracy"] for r in per_seed]
        summary[name] = {
            "accuracy_mean": statistics.mean(accs),
            "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "flops": per_seed[0][name]["flops"],
            "params": per_seed[0][name]["params"],
        }
        if name != "dense":
            summary[name]["kept"] = per_seed[0][name]["kept"]
            summary[name]["max_abs_diff"] = max(r[name]["max_abs_diff"] for r in per_seed)
            if "kept_before_select" in per_seed[0][name]:
                summary[name]["kept_before_select"] = [r[name]["kept_before_select"] for r in per_seed]
                summary[name]["accuracy_before_select_mean"] = statistics.mean(
                    r[name]["accuracy_before_select"] for r in per_seed
                )
                summary[name]["accuracy_after_select_mean"] = statistics.mean(
                    r[name]["accuracy_after_select"] for r in per_seed
                )
    shared = set.intersection(
        *(set(r["measure"]) for r in per_seed)
    )  # seeds measured by older code lack some
    for key in (k for k in per_seed[0]["measure"] if k in shared):
        summary.setdefault("measure", {})[key] = statistics.median(r["measure"][key] for r in per_seed)
    return summary


def paired_differences(
    per_seed: list[dict[str, Any]], baselines: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """WGSEF − baseline accuracy per seed (same seed, same batches), as (mean, sd) over seeds, per baseline.

    Args:
        per_seed: one record per seed with each method's "accuracy" (percent).
        baselines: methods to compare; those missing from any seed are left out.
    """
    out = {}
    for name in baselines:
        if all(name in r and "wgsef" in r for r in per_seed):
            d = [r["wgsef"]["accuracy"] - r[name]["accuracy"] for r in per_seed]
            out[name] = (statistics.fmean(d), statistics.stdev(d) if len(d) > 1 else 0.0)
    return out


def plot_and_report(
    ctx: Any,
    cfg: Any,
    summary: dict[str, Any],
    per_seed: list[dict[str, Any]],
    layer_sizes: list[int],
    title: str,
    claim: str,
    flops_target: float,
    drop_target: float,
) -> str:
    """Figures (accuracy vs FLOPs, kept groups per layer) and the Markdown fragment for the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    methods = [m for m in METHODS if m in summary]
    baselines = [m for m in BASELINES if m in summary]
    for name in methods:
        accs = [r[name]["accuracy"] for r in per_seed]
        flops = [r[name]["flops"] for r in per_seed]
        ax.errorbar(
            statistics.mean(flops),
            statistics.mean(accs),
            yerr=summary[name]["accuracy_std"],
            fmt="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel("FLOPs per image (compacted model)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{title}: accuracy vs FLOPs ({len(per_seed)} seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ctx.save_figure(fig, "accuracy_vs_flops")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    idx = list(range(len(layer_sizes)))
    band = [statistics.mean(r["wgsef"]["kept_before_select"][i] for r in per_seed) for i in idx]
    ax.bar([i - 0.3 for i in idx], layer_sizes, width=0.2, label="dense (m)")
    if "group_lasso" in summary:
        gl_band = [statistics.mean(r["group_lasso"]["kept_before_select"][i] for r in per_seed) for i in idx]
        ax.bar([i - 0.1 for i in idx], gl_band, width=0.2, label="group lasso, nonzero before top-k")
    ax.bar([i + 0.1 for i in idx], band, width=0.2, label="WGSEF, nonzero before top-k")
    ax.bar([i + 0.3 for i in idx], summary["wgsef"]["kept"], width=0.2, label="kept = k (after top-k)")
    ax.set_yscale("log")
    ax.set_xlabel("regularized layer")
    ax.set_ylabel("groups (filters / neurons)")
    ax.set_title(f"{title}: kept groups per layer")
    ax.legend(fontsize=7)
    ctx.save_figure(fig, "kept_per_layer")

    d = summary["dense"]
    ms = summary["measure"]
    lines = [
        f"### {title}",
        "",
        f"Config: keep ratio {cfg.keep} per layer{_rounding(cfg)}, λ = {cfg.lam} (WGSEF), {_epochs(cfg)}, batch {cfg.batch_size}, lr {cfg.lr}/{cfg.finetune_lr} "
        f"({cfg.finetune_schedule} fine-tune lr{_distilled(cfg)}), {len(per_seed)} seed{'s' if len(per_seed) != 1 else ''}, "
        f"{cfg.train_limit or 'all'} training images; trained on {summary.get('device', 'cpu')}{_precision(cfg)}, "
        "latency measured "
        f"on the CPU with {cfg.threads} thread(s).",
        "",
        "| method | accuracy (mean ± sd) | Δ vs dense (pt) | FLOPs | FLOPs ÷ | params | kept groups per layer |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in methods:
        s = summary[name]
        lines.append(
            f"| {name} | {s['accuracy_mean']:.2f} ± {s['accuracy_std']:.2f} | "
            f"{s['accuracy_mean'] - d['accuracy_mean']:+.2f} | {s['flops']:.3g} | {d['flops'] / s['flops']:.2f} | "
            f"{s['params']:.0f} | {s.get('kept', layer_sizes)} |"
        )
    w = summary["wgsef"]
    gl = summary.get("group_lasso")
    paired = paired_differences(per_seed, baselines)
    lines += [
        "",
        *(
            [
                "WGSEF − baseline, paired per seed (mean ± sd, pt): "
                + "; ".join(f"{n} {m:+.2f} ± {sd:.2f}" for n, (m, sd) in paired.items())
                + ".",
            ]
            if paired
            else []
        ),
        "Before the final hard top-k (nonzero groups per layer, per seed): "
        f"WGSEF {w['kept_before_select']}"
        + (f"; group lasso {gl['kept_before_select']}" if gl else "")
        + f"; k = {w['kept']}.",
        f"Accuracy before / after the hard selection (before fine-tuning): WGSEF "
        f"{w['accuracy_before_select_mean']:.2f} / {w['accuracy_after_select_mean']:.2f}"
        + (
            f"; group lasso {gl['accuracy_before_select_mean']:.2f} / {gl['accuracy_after_select_mean']:.2f}."
            if gl
            else "."
        ),
        "",
        "Compaction (WGSEF model, median over seeds; CPU):",
        "",
        "| | dense | compacted | ratio |",
        "|---|---|---|---|",
        f"| params | {ms['params_dense']:.0f} | {ms['params_compact']:.0f} | {ms['params_reduction']:.2f}× |",
        f"| FLOPs | {ms['flops_dense']:.3g} | {ms['flops_compact']:.3g} | {ms['flops_reduction']:.2f}× |",
        f"| latency batch 1 (ms) | {ms['latency_b1_dense'] * 1e3:.2f} | {ms['latency_b1_compact'] * 1e3:.2f} | "
        f"{ms['speedup_b1']:.2f}× |",
        f"| latency batch 64 (ms) | {ms['latency_b64_dense'] * 1e3:.2f} | {ms['latency_b64_compact'] * 1e3:.2f} | "
        f"{ms['speedup_b64']:.2f}× |",
        *(
            [
                f"| latency batch 64, both channels-last (ms) | {ms['latency_cl_b64_dense'] * 1e3:.2f} | "
                f"{ms['latency_cl_b64_compact'] * 1e3:.2f} | {ms['speedup_cl_b64']:.2f}× |",
                f"| batch 64, each model in its faster layout | | | {ms['speedup_best_b64']:.2f}× |",
            ]
            if "speedup_best_b64" in ms
            else []
        ),
        "",
        "Latency rows: NCHW, the PyTorch default, for both models; channels-last rows time copies of both models "
        "in that layout; the verdicts below give both NCHW and each model in its faster layout.",
        "",
        f"Max |compacted − masked| output over all sparse runs: "
        f"{max(summary[n]['max_abs_diff'] for n in methods if n != 'dense'):.2e}.",
        "",
    ]
    flops_red = d["flops"] / w["flops"]
    drop = d["accuracy_mean"] - w["accuracy_mean"]
    best_base = max((summary[n]["accuracy_mean"] for n in baselines), default=float("nan"))
    lines += [
        "| claim | target | measured | verdict |",
        "|---|---|---|---|",
        f"| paper: {claim} | — | see rows below | (no paper table numbers available; judged against our baselines) |",
        f"| FLOPs reduction | ≥ {flops_target:g}× | {flops_red:.2f}× | {'met' if flops_red >= flops_target else 'not met'} |",
        f"| accuracy drop vs dense | ≤ {drop_target:g} pt | {drop:+.2f} pt | {'met' if drop <= drop_target else 'not met'} |",
        f"| WGSEF ≥ every baseline at the same FLOPs | ≥ {best_base:.2f} | {w['accuracy_mean']:.2f} | "
        f"{'met' if w['accuracy_mean'] >= best_base else 'not met' if baselines else 'no baseline run'} |",
        *(
            f"| batch-64 speedup ≥ 0.7 × FLOPs reduction, {how} | ≥ {0.7 * ms['flops_reduction']:.2f}× | "
            f"{ms[key]:.2f}× | {'met' if ms[key] >= 0.7 * ms['flops_reduction'] else 'not met'} |"
            for key, how in (
                ("speedup_b64", "both NCHW"),
                ("speedup_best_b64", 'each model in its faster layout (`compact(memory_format="auto")`)'),
            )
            if key in ms
        ),
        "",
    ]
    return "\n".join(lines)


def _rounding(cfg: Any) -> str:
    """ " (counts rounded to multiples of N)" when the study rounds its kept counts, else ""."""
    return f" (counts rounded to multiples of {cfg.round_to})" if cfg.round_to > 1 else ""


def _epochs(cfg: Any) -> str:
    """How the epochs split: from init, or the penalties from the dense snapshot (`cfg.prox_from_dense`)."""
    tune = f"{cfg.finetune_epochs} fine-tune"
    if cfg.prox_from_dense <= 0:
        return f"{cfg.epochs} epochs + {tune}"
    p = cfg.prox_from_dense
    return (
        f"{cfg.epochs} dense epochs, then {p} with each penalty from the dense snapshot + {tune} "
        f"(dense and magnitude: {p + cfg.finetune_epochs} fine-tune)"
    )


def _distilled(cfg: Any) -> str:
    """ "; distilled from dense, weight α at T" when the sparse fine-tunes distil, else ""."""
    if cfg.distill <= 0:
        return ""
    return f"; sparse fine-tunes distilled from dense, weight {cfg.distill} at T = {cfg.distill_temperature}"


def _precision(cfg: Any) -> str:
    """ " in bf16 autocast" when the training forwards ran in bfloat16, else ""."""
    return " in bf16 autocast" if cfg.precision == "bf16" else ""

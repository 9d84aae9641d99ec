"""Wiring shared by the SST experiments: the study config, one sub-run's training and caching, the LR sweep
over seeds, seed means per method, and the tables and gradient-norm figures of the reports. Registers no
experiment; the methods themselves (`prepare_method`, `GradNormTrace`, `cost_summary`) live in `sparsenets.spectral`.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.runs import PoolConfig, RunContext, pool_map
from sparsenets.spectral import GradNormTrace, cost_summary, prepare_method, steady_costs
from sparsenets.train import Trainer


@dataclass
class StudyConfig(PoolConfig):
    """Fields every SST study shares: which methods, the LR sweep, seeds, the SST/ReLoRA* schedules (and `workers`).

    Attributes:
        methods: methods compared (`sparsenets.spectral.METHODS`).
        lrs: LRs swept on the first seed; the best one per method runs on the other seeds.
        seeds: seeds per method, from the run's seed up.
        sst_period: SST's T3 (steps per iteration).
        restart_warmup: LR re-warm-up steps at each SST iteration and ReLoRA* merge.
        relora_period: steps between ReLoRA* merges.
    """

    methods: tuple[str, ...] = ("full", "lora", "relora", "sst")
    lrs: tuple[float, ...] = (3e-3,)
    seeds: int = 1
    sst_period: int = 25
    restart_warmup: int = 5
    relora_period: int = 200


@dataclass
class TextStudyConfig(StudyConfig):
    """`StudyConfig` plus the small transformer both text studies train and its initial LR warm-up.

    Attributes:
        d, heads, layers, mlp: model width, attention heads, blocks (per stack) and MLP width.
        warmup: linear LR warm-up steps at the start of training.
    """

    d: int = 64
    heads: int = 4
    layers: int = 2
    mlp: int = 256
    warmup: int = 100


def fit_method(
    cfg: StudyConfig,
    method: str,
    model: nn.Module,
    batches: Callable[[int], Any],
    loss_fn: Callable[[nn.Module, Any], Any],
    steps: int,
    *,
    rank: int,
    targets: Sequence[str],
    lr: float,
    seed: int,
    warmup: int,
    out: Path,
    trace_every: int = 5,
    **trainer_options: Any,
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Convert `model` for `method` with the study's schedules, train it in `out` with a gradient-norm trace.

    Args:
        trainer_options: further `Trainer` arguments (eval_fn, eval_every, log_every, device, ...).

    Returns:
        (the trainer's history, the run's `cost_summary` plus its "grad_norm" trace [[step, norm], ...]).
    """
    setup = prepare_method(
        method,
        model,
        rank=rank,
        targets=targets,
        lr=lr,
        steps=steps,
        warmup=warmup,
        sst_period=cfg.sst_period,
        restart_warmup=cfg.restart_warmup,
        relora_period=cfg.relora_period,
        seed=seed,
    )
    trace = GradNormTrace(every=trace_every)
    history = Trainer(
        model,
        setup.optimizer,
        batches,
        loss_fn,
        steps,
        scheduler=setup.scheduler,
        callbacks=[*setup.callbacks, trace],
        run_dir=out,
        progress=False,
        **trainer_options,
    ).fit()
    return history, {**cost_summary(model, setup.optimizer, trace), "grad_norm": trace.trace}


def cached_subrun(out: Path, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`train()`'s result, kept in out/summary.json: a finished sub-run is read back instead of trained again."""
    summary_path = out / "summary.json"
    if summary_path.exists():
        return json.loads(summary_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    result = train()
    summary_path.write_text(json.dumps(result))
    return result


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def versus_low_rank(means: dict[str, float], higher_is_better: bool) -> tuple[bool | None, float]:
    """SST against the best low-rank baseline (LoRA, ReLoRA*) at one rank, from each method's seed-mean metric.

    Returns (SST beats every low-rank baseline present, or None when SST or both baselines are missing; the
    fraction of the baseline-to-full-rank gap SST closes: 1 = as good as full rank, 0 = no better than the best
    baseline, NaN when full rank is missing or no better than that baseline).
    """
    others = [means[m] for m in ("lora", "relora") if m in means]
    if "sst" not in means or not others:
        return None, math.nan
    sign = 1.0 if higher_is_better else -1.0  # compare as "higher is better" either way
    best = max(others, key=lambda v: sign * v)
    beats = sign * (means["sst"] - best) > 0
    gap = sign * (means["full"] - best) if "full" in means else math.nan
    return beats, (sign * (means["sst"] - best) / gap if gap > 0 else math.nan)


def sweep_then_seeds(
    job: Callable[[tuple], dict[str, Any]],
    keys: Sequence[tuple],
    lrs: Sequence[float],
    seeds: Sequence[int],
    score: Callable[[dict[str, Any]], float],
    workers: int = 1,
) -> tuple[dict[tuple, tuple[float, list[dict[str, Any]]]], list[dict[str, Any]]]:
    """For every key (e.g. (geometry, method)): pick the LR on the first seed (highest `score`), then run that LR
    on the other seeds. `job((*key, lr, seed))` trains one sub-run; each of the two phases runs its jobs in
    `workers` processes (`runs.pool_map`), so `job` must be picklable (a module-level function or a partial).

    Returns:
        ({key: (chosen lr, one result per seed in `seeds` order)}, every sub-run's result in the order run).
    """
    done: dict[tuple, dict[str, Any]] = {}

    def run(jobs: list[tuple]) -> None:
        for i, res in pool_map(job, jobs, workers):
            done[jobs[i]] = res

    run([(*k, lr, seeds[0]) for k in keys for lr in lrs])
    best = {k: max(lrs, key=lambda lr, k=k: score(done[(*k, lr, seeds[0])])) for k in keys}
    run([(*k, best[k], s) for k in keys for s in seeds[1:]])
    return {k: (best[k], [done[(*k, best[k], s)] for s in seeds]) for k in keys}, list(done.values())


@dataclass
class MethodMean:
    """One method of one group (a geometry, a task) over its seeds at the LR chosen for it.

    Attributes:
        method: the method's name.
        lr: the chosen LR.
        mean, std: seed mean and sample std of the study's metric.
        first: the first seed's sub-run result (costs, traces).
    """

    method: str
    lr: float
    mean: float
    std: float
    first: dict[str, Any]


def _subrun(
    train_one: Callable[..., dict[str, Any]],
    cfg: StudyConfig,
    run_dir: Path,
    key: tuple[str, str, float, int],
) -> dict[str, Any]:
    """Process-pool entry: `train_one(cfg, group, method, lr, seed, out)`, cached in out under the run folder."""
    group, method, lr, seed = key
    out = run_dir / f"{group}-{method}-lr{lr:g}-s{seed}"
    return cached_subrun(out, lambda: train_one(cfg, group, method, lr, seed, out))


def compare_methods(
    cfg: StudyConfig,
    ctx: RunContext,
    train_one: Callable[..., dict[str, Any]],
    field: str,
    known: Sequence[str],
    *,
    score: Callable[[dict[str, Any]], float],
    metric: str,
    metric_name: str,
    label: str,
    digits: int,
    figure: str,
    gap_closed: bool = False,
) -> tuple[dict[str, Any], dict[str, list[MethodMean]]]:
    """Every method of `cfg.methods` in every group (a geometry, a task) of `cfg.<field>`, compared on `metric`.

    Per (group, method): the LR with the highest `score` on the first seed, then the other seeds at it
    (`sweep_then_seeds`, sub-runs `train_one(cfg, group, method, lr, seed, out)` cached under the run folder).
    Logs each seed mean, saves the first seed's gradient norms (one panel per group) as figure `figure` and
    every sub-run as runs.json.

    Args:
        train_one: a module-level function (the pool pickles it) returning one sub-run's result dict.
        field, known: the config field listing the groups, which must be a non-empty subset of `known`.
        metric_name: metric key of a seed mean, formatted with `group` and `method` (e.g. "bleu_{group}_{method}").
        label, digits: how the log names and rounds the metric.
        gap_closed: also report "<group>_gap_closed" (`versus_low_rank`) where it is defined.

    Returns:
        (metrics: the seed means, then "<group>_sst_beats_low_rank" (higher `metric` is better) per group;
        {group: [one MethodMean per method, in `cfg.methods` order]}).

    Raises:
        ConfigError: `cfg.<field>` empty or naming an unknown group.
    """
    import matplotlib.pyplot as plt

    groups = getattr(cfg, field)
    if not groups or any(g not in known for g in groups):
        raise ConfigError(f"{field} must be a non-empty subset of {list(known)}; got {list(groups)}")
    seeds = [ctx.seed + i for i in range(cfg.seeds)]
    keys = [(group, method) for group in groups for method in cfg.methods]
    job = functools.partial(_subrun, train_one, cfg, ctx.dir)
    chosen, every = sweep_then_seeds(job, keys, cfg.lrs, seeds, score, cfg.workers)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.6), squeeze=False)
    metrics: dict[str, Any] = {}
    per_group: dict[str, list[MethodMean]] = {}
    for group, ax in zip(groups, axes[0]):
        cells = per_group[group] = []
        for method in cfg.methods:
            lr, sel = chosen[(group, method)]
            mean, std = mean_std([r[metric] for r in sel])
            cells.append(MethodMean(method, lr, mean, std, sel[0]))
            metrics[metric_name.format(group=group, method=method)] = mean
            ctx.log(f"{group} {method}: lr {lr:g}, {label} {mean:.{digits}f} ± {std:.{digits}f}")
            plot_grad_norm(ax, sel[0], method)
        ax.set(xlabel="step", ylabel="gradient norm", yscale="log", title=f"{group} (seed {seeds[0]})")
        plain_log_ticks(ax.yaxis)
        if ax.lines:
            ax.legend()
        beats, closed = versus_low_rank({c.method: c.mean for c in cells}, higher_is_better=True)
        if beats is not None:
            metrics[f"{group}_sst_beats_low_rank"] = beats
        if gap_closed and not math.isnan(closed):
            metrics[f"{group}_gap_closed"] = closed
    if any(ax.lines for ax in axes[0]):
        ctx.save_figure(fig, figure)
    else:  # every sub-run resumed without its trace: no figure rather than empty axes
        plt.close(fig)
    ctx.save_json("runs.json", [{k: v for k, v in r.items() if k != "grad_norm"} for r in every])
    return metrics, per_group


def cost_table(
    columns: Sequence[str],
    rows: Sequence[tuple[Sequence[str], dict[str, Any]]],
    unit: str = "MiB",
    ms_digits: int = 0,
) -> str:
    """A Markdown table whose rows are a study's own cells followed by the cost columns of a sub-run's result:
    trainable params, steady Adam state scalars (`steady_costs`), training state in `unit` ("MiB" or "KiB") and
    median step ms.

    Args:
        columns: the leading column names.
        rows: (leading cells, one sub-run's result with its `cost_summary`) per row.
    """
    header = [*columns, "trainable params", "Adam state scalars (steady)", f"train-state {unit}", "step ms"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for cells, result in rows:
        state, size = steady_costs(result)
        size_text = f"{size / 2**20:.2f}" if unit == "MiB" else f"{size / 2**10:.0f}"
        costs = [f"{result['trainable_params']:,}", f"{state:,}", size_text]
        costs.append(f"{result['step_time_s'] * 1e3:.{ms_digits}f}")
        lines.append("| " + " | ".join([*cells, *costs]) + " |")
    return "\n".join(lines)


def plot_grad_norm(ax: Any, result: dict[str, Any], label: str) -> None:
    """Add a run's gradient-norm trace ([(step, norm), ...] under "grad_norm") to a matplotlib axis."""
    if result["grad_norm"]:  # empty only when a finished sub-run was resumed after a crash
        steps, norms = zip(*result["grad_norm"])
        ax.plot(steps, norms, label=label, lw=0.8)

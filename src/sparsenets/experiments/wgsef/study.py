"""A WGSEF study: every (seed, method) job (in parallel processes when asked), latency of the saved model pairs,
then the report. The WGSEF experiments (LeNet-5 / MNIST; VGG-16-BN and ResNet-18 / Fashion-MNIST) call
`run_study`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sparsenets import data
from sparsenets.compact import load_compact, measure
from sparsenets.errors import ConfigError
from sparsenets.experiments.wgsef.methods import (
    METHODS,
    check_methods,
    check_precision,
    check_prox_from_dense,
    check_schedule,
    load_progress,
    run_seed,
)
from sparsenets.experiments.wgsef.report import plot_and_report, summarize
from sparsenets.optim import kept_count
from sparsenets.runs import RunConfig, pool_map
from sparsenets.train import check_distill

__all__ = ["METHODS", "StudyConfig", "run_study"]


@dataclass
class StudyConfig(RunConfig):
    """Hyper-parameters every WGSEF study shares (its experiment module overrides the defaults of its model).

    Every method trains `epochs` on the dense run's optimizer with its own penalty on top, is cut to exactly the
    kept count per layer, and fine-tunes `finetune_epochs` with a fresh SGD (docs/methods/wgsef.md, Protocol).
    """

    width: float = 1.0
    keep: float = 0.5
    round_to: int = 1  # 8 or 16: kept counts in multiples of it (faster CPU convs; compact-counts.md)
    lam: float = 0.005
    lam_group_lasso: float = 0.003
    tp_reg: float = 1e-3
    epochs: int = 5
    finetune_epochs: int = 2
    warmup_epochs: float = 0.25
    batch_size: int = 128
    lr: float = 0.05
    finetune_lr: float = 0.01
    finetune_schedule: str = "constant"  # or "cosine": anneal the fine-tune lr to 0 (every method alike)
    distill: float = 0.0  # > 0: every sparse method's fine-tune distils from the finished dense model
    distill_temperature: float = 4.0
    prox_from_dense: int = 0  # > 0: the penalties start from the dense snapshot and train this many epochs
    finetune_compact: bool = True  # fine-tune the compacted model (same steps as the masked one, fewer FLOPs)
    precision: str = "fp32"  # or "bf16": training forwards under bfloat16 autocast (GPUs, AMX CPUs)
    weight_decay: float = 5e-4
    wgsef_weight_decay: bool = (
        False  # True: weight decay on WGSEF's tensors too (every run before session 17)
    )
    seeds: int = 3
    train_limit: int = 0  # 0: every training image
    test_limit: int = 0
    latency_repeat: int = 30
    methods: tuple[str, ...] = METHODS  # dense and wgsef always; drop baselines for a λ sweep
    workers: int = 1  # (seed, method) jobs run in parallel processes (each on the GPU when present)


def _seed_job(
    args: tuple[Any, Callable[[], nn.Module], str, int, str, Path, tuple[str, ...]],
) -> dict[str, Any]:
    """Process-pool entry: load the data and run some methods (`only`) of one seed."""
    cfg, make_model, dataset, seed, device, save_dir, only = args
    train, test = _load(dataset, cfg)
    return run_seed(cfg, make_model, train, test, seed, _print, device, save_dir, only)


def measure_saved(save_dir: Path, sample: torch.Tensor, repeat: int) -> dict[str, float]:
    """Params, FLOPs and CPU latency of the masked vs compacted WGSEF model written by `run_seed`.

    Args:
        save_dir: the seed's folder holding `wgsef-masked.*` and `wgsef-compact.*`.
        sample: (1, C, H, W) one input; batches of 1 and 64 are made from it.
        repeat: timed forward passes per model and batch size.
    """
    return measure(
        load_compact(save_dir / "wgsef-masked"),
        load_compact(save_dir / "wgsef-compact"),
        sample,
        repeat=repeat,
    )


def _print(message: str) -> None:
    print(message, flush=True)


def _load(
    dataset: str, cfg: Any
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    train, test = data.load(dataset, split="train"), data.load(dataset, split="test")
    tr = (train.x[: cfg.train_limit or None], train.y[: cfg.train_limit or None])
    te = (test.x[: cfg.test_limit or None], test.y[: cfg.test_limit or None])
    return tr, te


def _finished_seeds(path: Path) -> dict[int, dict[str, Any]]:
    """Seeds already in per_seed.json (a resumed run skips them)."""
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())
    except ValueError as e:
        raise ConfigError(f"{path} is unreadable; delete it to re-run every seed") from e
    return {r["seed"]: r for r in rows if "seed" in r}


def _job_order(
    seeds: list[int], methods: tuple[str, ...], all_need_dense: bool
) -> tuple[list[tuple[int, str]], list[list[int]]]:
    """The (seed, method) jobs in submission order, and for each the indices of the jobs it waits for.

    Seed by seed, magnitude (a short fine-tune) last; magnitude waits for its own seed's dense job (it starts
    from dense), and with `all_need_dense` (distillation: dense is the teacher; prox_from_dense: the penalties
    start from its snapshot) so does every sparse method. A free worker takes
    the lowest-index job that is ready, so one worker finishes seed 1 before seed 2, and several start the next
    seed's dense while seed 1's methods wait.
    """
    order = [(s, m) for s in seeds for m in methods if m != "magnitude"]
    order += [(s, m) for s in seeds for m in methods if m == "magnitude"]
    waits = tuple(m for m in methods if m != "dense") if all_need_dense else ("magnitude",)
    after = [[order.index((s, "dense"))] if m in waits and (s, "dense") in order else [] for s, m in order]
    return order, after


def run_study(
    cfg: Any,
    ctx: Any,
    dataset: str,
    make_model: Callable[[], nn.Module],
    sizes: list[int],
    title: str,
    claim: str,
    flops_target: float,
    drop_target: float,
) -> dict[str, Any]:
    """One WGSEF study: every method for each seed on `dataset`, then tables, figures and the claims table.

    Seeds already in the run folder's per_seed.json are reused, and so are the methods a killed run recorded
    for the others (`seed-N/method-NAME.json`). Every (seed, method) pair is one job; magnitude (it starts from
    dense), and with `cfg.distill` every sparse method, waits only for its own seed's dense job. With `cfg.workers` > 1 the jobs run in parallel processes
    (`make_model` must then be picklable) — on a GPU, where each method's steps are launch-bound, that keeps the
    device busy.

    Returns:
        The summary over seeds (also written to summary.json; per-seed results to per_seed.json).
    """
    methods = check_methods(cfg.methods)  # before any training
    check_schedule(cfg.finetune_schedule)
    check_distill(cfg.distill, cfg.distill_temperature)
    check_precision(cfg.precision)
    check_prox_from_dense(cfg.prox_from_dense)
    kept_count(1, cfg.keep, cfg.round_to)  # a bad keep ratio or round_to fails here, not after dense
    seeds = [ctx.seed + i for i in range(cfg.seeds)]
    done = _finished_seeds(ctx.dir / "per_seed.json")
    todo = [s for s in seeds if s not in done]
    order, after = _job_order(todo, methods, cfg.distill > 0 or cfg.prox_from_dense > 0)
    jobs = [(cfg, make_model, dataset, s, str(ctx.device), ctx.dir / f"seed-{s}", (m,)) for s, m in order]
    for _ in pool_map(_seed_job, jobs, cfg.workers, after):
        pass  # each job records its method in its seed folder
    for s in todo:
        done[s] = load_progress(ctx.dir / f"seed-{s}", s)
        ctx.save_json("per_seed.json", [done[t] for t in seeds if t in done])
    # latency after all training, one model at a time, so parallel seeds do not load the timed core
    unmeasured = [s for s in seeds if "measure" not in done[s]]
    if unmeasured:
        sample = _load(dataset, cfg)[1][0][:1]
        for s in unmeasured:
            done[s]["measure"] = measure_saved(ctx.dir / f"seed-{s}", sample, cfg.latency_repeat)
            ctx.save_json("per_seed.json", [done[t] for t in seeds])
    per_seed = [done[s] for s in seeds]
    summary = summarize(per_seed)
    summary["device"] = str(ctx.device)
    ctx.save_json("summary.json", summary)
    ctx.write_report(
        plot_and_report(ctx, cfg, summary, per_seed, sizes, title, claim, flops_target, drop_target)
    )
    return summary

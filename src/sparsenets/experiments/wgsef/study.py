"""A WGSEF study: every (seed, method) job (in parallel processes when asked), latency of the saved model pairs,
then the report. The WGSEF experiments (LeNet-5 / MNIST; VGG-16-BN and ResNet-18 / Fashion-MNIST) call
`run_study`.
"""

from __future__ import annotations

import functools
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
from sparsenets.experiments.wgsef.report import layer_labels, plot_and_report, summarize
from sparsenets.optim import kept_count
from sparsenets.runs import PoolConfig, RunContext, experiment, pool_map
from sparsenets.train import check_distill

__all__ = [
    "FASHION_QUICK",
    "METHODS",
    "FashionStudyConfig",
    "StudyConfig",
    "StudySpec",
    "register_study",
    "run_study",
]


@dataclass
class StudyConfig(PoolConfig):
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


@dataclass
class FashionStudyConfig(StudyConfig):
    """The Fashion-MNIST studies' defaults (VGG-16-BN and ResNet-18), scaled to a shared 2-core CPU.

    The paper trains full-width VGG-16 on CIFAR-10 / Fashion-MNIST on GPUs; these defaults (width 1/8, 10k
    training images, 3 + 1 epochs) fit a small CPU. Raise them with --set where a GPU is available.
    """

    width: float = 0.125
    keep: float = 0.4
    lam: float = 0.02  # seed-0 sweep 0.005-0.02 within 0.55 pt (noise); 0.01 gave less on seeds 1-3 (docs)
    lam_group_lasso: float = 0.02
    epochs: int = 3
    finetune_epochs: int = 1
    train_limit: int = 10000


FASHION_QUICK = {  # a smoke test of the Fashion-MNIST studies: tiny width and data, two seeds
    "width": 0.0625,
    "epochs": 1,
    "finetune_epochs": 1,
    "seeds": 2,
    "train_limit": 512,
    "test_limit": 500,
    "latency_repeat": 3,
}


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


@dataclass(frozen=True)
class StudySpec:
    """What one WGSEF experiment fixes: its data, model, title and the paper's claim with its targets.

    Attributes:
        dataset: the registry name of the images ("mnist", "fashion-mnist").
        model: the model class, called as `model(width=cfg.width)` (picklable for worker processes).
        sizes: a built model → its group count per regularized layer (for the kept-per-layer figure).
        title: "model / data" for tables and figures.
        claim: the paper's claim this study tests.
        flops_target: the FLOPs reduction (×) the claims table asks for.
        drop_target: the accuracy drop (points) the claims table allows.
    """

    dataset: str
    model: Callable[..., nn.Module]
    sizes: Callable[[nn.Module], list[int]]
    title: str
    claim: str
    flops_target: float
    drop_target: float


def run_study(cfg: Any, ctx: Any, spec: StudySpec) -> dict[str, Any]:
    """One WGSEF study: every method for each seed on `spec.dataset`, then tables, figures and the claims table.

    Seeds already in the run folder's per_seed.json are reused, and so are the methods a killed run recorded
    for the others (`seed-N/method-NAME.json`). Every (seed, method) pair is one job; magnitude (it starts from
    dense), and with `cfg.distill` every sparse method, waits only for its own seed's dense job. With
    `cfg.workers` > 1 the jobs run in parallel processes — on a GPU, where each method's steps are launch-bound,
    that keeps the device busy.

    Returns:
        The summary over seeds (also written to summary.json; per-seed results to per_seed.json).
    """
    dataset, make_model = spec.dataset, functools.partial(spec.model, width=cfg.width)
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
    model = make_model()
    sizes = spec.sizes(model)
    ctx.write_report(
        plot_and_report(
            ctx,
            cfg,
            summary,
            per_seed,
            sizes,
            spec.title,
            spec.claim,
            spec.flops_target,
            spec.drop_target,
            layer_names=layer_labels(model, sizes, torch.zeros(1, 1, 28, 28)),  # both datasets: 28×28 gray
        )
    )
    return summary


def register_study(
    name: str,
    config_cls: type,
    spec: StudySpec,
    quick: dict[str, Any],
    description: str,
    presets: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Register a WGSEF experiment `name` whose run is `run_study(cfg, ctx, spec)` (the three studies differ
    only in their config defaults and their `StudySpec`)."""

    def run(cfg: Any, ctx: RunContext) -> dict[str, Any]:
        return run_study(cfg, ctx, spec)

    run.__doc__ = (
        f"Train every method for each seed on {spec.title}; write tables and figures; return the summary."
    )
    experiment(name, config_cls, quick=quick, description=description, presets=presets)(run)

"""Shared wiring of the SST experiments: one function sets up any of full / SST / LoRA / ReLoRA* / GaLore on a
model, plus callbacks that record gradient norms and step times. Registers no experiment."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.runs import pool_map
from sparsenets.spectral import (
    GaLoreAdamW,
    LoRAConfig,
    ReLoRASchedule,
    SSTConfig,
    SSTSchedule,
    convert,
    convert_lora,
    jagged_lr_lambda,
    optimizer_state_numel,
    select_linears,
    trainable_parameters,
)
from sparsenets.train.callbacks import Callback, TrainState

METHODS = ("full", "sst", "lora", "relora", "galore")


class GradNormTrace(Callback):
    """Global gradient norm of the trainable parameters every `every` steps, and wall time per step."""

    def __init__(self, every: int = 5) -> None:
        self.every, self.trace, self.step_times = every, [], []
        self._t: float | None = None

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            grads = [p.grad.norm() for p in state.module.parameters() if p.grad is not None]
            self.trace.append([state.step, float(torch.stack(grads).norm())])

    def after_step(self, state: TrainState) -> None:
        now = time.perf_counter()
        if self._t is not None:
            self.step_times.append(now - self._t)
        self._t = now

    def on_eval(self, state: TrainState, metrics: dict[str, float]) -> None:
        self._t = None  # the evaluation is not a training step

    def state_dict(self) -> dict[str, Any]:
        """The trace and step times so far (a resumed run keeps the part before its checkpoint)."""
        return {"trace": [list(t) for t in self.trace], "step_times": list(self.step_times)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trace = [list(t) for t in state.get("trace", [])]
        self.step_times = list(state.get("step_times", []))

    def median_step_time(self) -> float:
        """Median seconds per training step (evaluations excluded)."""
        return statistics.median(self.step_times) if self.step_times else float("nan")


@dataclass
class MethodSetup:
    """What `prepare` returns: the optimizer, LR scheduler and callbacks to hand to the Trainer."""

    optimizer: Any
    scheduler: Any
    callbacks: list[Callback] = field(default_factory=list)


def prepare(
    method: str,
    model: nn.Module,
    *,
    rank: int,
    targets: Sequence[str],
    lr: float,
    steps: int,
    warmup: int,
    sst_period: int,
    restart_warmup: int,
    relora_period: int,
    seed: int,
    iterations_per_round: int | None = None,
    sst_kwargs: dict[str, Any] | None = None,
) -> MethodSetup:
    """Convert `model` in place for `method` and build its optimizer, schedule and callbacks.

    Every method uses Adam(W) without weight decay, linear warm-up and cosine decay; SST adds a re-warm-up at each
    iteration (T3 = `sst_period`) and ReLoRA* at each merge (`relora_period`).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {METHODS}")
    targets = tuple(targets)
    restart, callbacks = 0, []
    if method == "sst":
        cfg = SSTConfig(
            rank=rank,
            targets=targets,
            period=sst_period,
            warmup=restart_warmup,
            iterations_per_round=iterations_per_round,
            **(sst_kwargs or {}),
        )
        convert(model, cfg)
        callbacks.append(SSTSchedule(cfg, seed=seed))
        restart = sst_period
    elif method in ("lora", "relora"):
        convert_lora(model, LoRAConfig(rank=rank, targets=targets))
        if method == "relora":
            callbacks.append(ReLoRASchedule(relora_period, seed=seed))
            restart = relora_period
    params = [p for p in model.parameters() if p.requires_grad]
    if method == "galore":
        weights = {id(m.weight) for m in select_linears(model, targets).values()}
        groups = [
            {"params": [p for p in params if id(p) in weights], "galore": True},
            {"params": [p for p in params if id(p) not in weights]},
        ]
        opt: Any = GaLoreAdamW(groups, lr=lr, rank=rank, update_proj_gap=relora_period)
    else:
        opt = torch.optim.Adam(params, lr=lr)
    factor = jagged_lr_lambda(steps, warmup, restart, restart_warmup if restart else 0)
    return MethodSetup(opt, torch.optim.lr_scheduler.LambdaLR(opt, factor), callbacks)


def training_state_bytes(model: nn.Module, optimizer: Any) -> int:
    """Bytes of weights + buffers + gradients (one per trainable parameter) + optimizer state tensors."""
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    state = 0
    for st in getattr(optimizer, "state", {}).values():
        state += sum(
            v.numel() * v.element_size() for k, v in st.items() if isinstance(v, torch.Tensor) and k != "step"
        )
    return weights + grads + state


def cost_summary(model: nn.Module, optimizer: Any, trace: GradNormTrace) -> dict[str, float]:
    """Trainable parameters, optimizer-state scalars, training-state bytes and median step time."""
    return {
        "trainable_params": trainable_parameters(model),
        "optimizer_state": optimizer_state_numel(optimizer),
        "train_state_bytes": training_state_bytes(model, optimizer),
        "step_time_s": trace.median_step_time(),
    }


def steady_costs(result: dict[str, Any]) -> tuple[int, int]:
    """(Adam state scalars, training-state bytes) in the steady state of an fp32 Adam run.

    SST and ReLoRA* drop optimizer state at resamples/merges, and a run may end on one, so the state read at the
    end can be partial; with Adam every trainable scalar holds two moments once it has stepped (checked in the
    tests and measured directly in benchmarks/bench_sst.py), hence 2 × trainable parameters.
    """
    state = 2 * int(result["trainable_params"])
    return state, int(result["train_state_bytes"]) - 4 * int(result["optimizer_state"]) + 4 * state


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


def plot_grad_norm(ax: Any, result: dict[str, Any], label: str) -> None:
    """Add a run's gradient-norm trace ([(step, norm), ...] under "grad_norm") to a matplotlib axis."""
    if result["grad_norm"]:  # empty only when a finished sub-run was resumed after a crash
        steps, norms = zip(*result["grad_norm"])
        ax.plot(steps, norms, label=label, lw=0.8)

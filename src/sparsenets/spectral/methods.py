"""One entry point for every training method of the SST comparisons: full rank, SST, LoRA, ReLoRA*, GaLore.

`prepare_method` converts a model in place for the method and returns the optimizer, LR schedule and callbacks
to hand to a `Trainer` (or to drive from a loop of your own), so that methods differ in nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.spectral.convert import SSTConfig, sst_convert
from sparsenets.spectral.galore import GaLoreAdamW
from sparsenets.spectral.lowrank import LoRAConfig, ReLoRASchedule, lora_convert
from sparsenets.spectral.schedule import SSTSchedule, jagged_lr_lambda
from sparsenets.spectral.targets import select_linears
from sparsenets.train.callbacks import Callback

METHODS = ("full", "sst", "lora", "relora", "galore")


@dataclass
class MethodSetup:
    """What `prepare_method` returns: the optimizer, LR scheduler and callbacks to hand to the Trainer."""

    optimizer: Any
    scheduler: Any
    callbacks: list[Callback] = field(default_factory=list)


def prepare_method(
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
    """Convert `model` in place for `method` and build its optimizer, LR schedule and callbacks.

    Every method uses Adam(W) without weight decay, linear warm-up and cosine decay; SST adds a re-warm-up at each
    iteration (T3 = `sst_period`) and ReLoRA* at each merge (`relora_period`).

    Args:
        method: one of `METHODS`: "full" (plain Adam), "sst" (`sst_convert` + `SSTSchedule`), "lora"
            (`lora_convert`, W₀ frozen), "relora" (LoRA + `ReLoRASchedule`), "galore" (`GaLoreAdamW` on the
            targeted weights, model unchanged).
        model: the model to train; its targeted nn.Linear layers (out, in) are swapped in place.
        rank: r of SST, LoRA/ReLoRA* and GaLore's projection.
        targets: names (or name suffixes) of the nn.Linear layers the method applies to.
        lr, steps, warmup: peak LR, total optimizer steps and initial linear warm-up steps.
        sst_period: SST's T3 (steps per iteration).
        restart_warmup: LR re-warm-up steps at each SST iteration or ReLoRA* merge.
        relora_period: steps between ReLoRA* merges, and between GaLore projector updates.
        seed: seed of SST's sampling and ReLoRA*'s re-draws.
        iterations_per_round: SST's T2 (None: k/r).
        sst_kwargs: further `SSTConfig` fields (sampling, enhanced_grad, normalize, resvd).

    Raises:
        ConfigError: an unknown method, or a target/rank the converters reject.
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
        sst_convert(model, cfg)
        callbacks.append(SSTSchedule(cfg, seed=seed))
        restart = sst_period
    elif method in ("lora", "relora"):
        lora_convert(model, LoRAConfig(rank=rank, targets=targets))
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

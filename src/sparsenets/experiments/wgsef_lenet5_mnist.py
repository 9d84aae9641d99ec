"""`wgsef-lenet5-mnist`: WGSEF vs group lasso, magnitude pruning and Torch-Pruning GroupNorm on LeNet-5 / MNIST."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsenets import data
from sparsenets.experiments.wgsef_common import plot_and_report, run_seed, summarize
from sparsenets.models.cnn import LeNet5
from sparsenets.runs import RunContext, experiment


@dataclass
class Config:
    """Hyper-parameters of `wgsef-lenet5-mnist` (filters of both convs and the fc neurons are groups)."""

    width: float = 1.0
    keep: float = 0.5
    lam: float = 0.02
    lam_group_lasso: float = 0.02
    tp_reg: float = 1e-3
    epochs: int = 2
    finetune_epochs: int = 1
    warmup_epochs: float = 0.25
    batch_size: int = 128
    lr: float = 0.05
    finetune_lr: float = 0.01
    weight_decay: float = 5e-4
    seeds: int = 3
    train_limit: int = 30000  # half of MNIST: 3 seeds × 5 methods must fit a shared 2-core CPU
    test_limit: int = 0
    latency_repeat: int = 30
    threads: int = 1


@experiment(
    "wgsef-lenet5-mnist",
    Config,
    quick={
        "width": 0.5,
        "epochs": 1,
        "finetune_epochs": 1,
        "seeds": 2,
        "train_limit": 1024,
        "test_limit": 500,
        "latency_repeat": 3,
    },
    description="WGSEF exact-k filter/neuron sparsity on LeNet-5/MNIST vs group lasso, magnitude, TP GroupNorm",
)
def run(cfg: Config, ctx: RunContext) -> dict:
    """Train every method for each seed; write tables and figures; return the seed summary."""
    torch.set_num_threads(cfg.threads)
    train, test = data.load("mnist", split="train"), data.load("mnist", split="test")
    tr = (train.x[: cfg.train_limit or None], train.y[: cfg.train_limit or None])
    te = (test.x[: cfg.test_limit or None], test.y[: cfg.test_limit or None])
    per_seed = []
    for i in range(cfg.seeds):
        per_seed.append(run_seed(cfg, lambda: LeNet5(width=cfg.width), tr, te, ctx.seed + i, ctx.log))
        ctx.save_json("per_seed.json", per_seed)
    summary = summarize(per_seed)
    ctx.save_json("summary.json", summary)
    sizes = _layer_sizes(cfg.width)
    ctx.write_report(
        plot_and_report(
            ctx,
            cfg,
            summary,
            per_seed,
            sizes,
            "LeNet-5 / MNIST",
            "higher group sparsity at competitive accuracy (App. A.5, vs Bui et al.)",
            3.0,
            0.3,
        )
    )
    return summary


def _layer_sizes(width: float) -> list[int]:
    model = LeNet5(width=width)
    return [model[0].out_channels, model[3].out_channels, model[7].out_features]

"""`wgsef-lenet5-mnist`: WGSEF vs group lasso, magnitude pruning and Torch-Pruning GroupNorm on LeNet-5 / MNIST."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sparsenets.experiments.wgsef.study import StudyConfig, run_study
from sparsenets.models.cnn import LeNet5
from sparsenets.runs import RunContext, experiment


@dataclass
class Config(StudyConfig):
    """Hyper-parameters of `wgsef-lenet5-mnist` (filters of both convs and the fc neurons are groups); the
    shared fields are documented on `StudyConfig`."""

    lam: float = 0.005  # best of {0.0025, 0.005, 0.01, 0.02, 0.04} on seed 0 (docs/methods/wgsef.md)
    lam_group_lasso: float = 0.003  # with wd 5e-4, 0.004 pruned past k (seed 1: 221 of 250 fc)


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
    return run_study(
        cfg,
        ctx,
        "mnist",
        functools.partial(LeNet5, width=cfg.width),
        _layer_sizes(cfg.width),
        "LeNet-5 / MNIST",
        "higher group sparsity at competitive accuracy (App. A.5, vs Bui et al.)",
        3.0,
        0.3,
    )


def _layer_sizes(width: float) -> list[int]:
    model = LeNet5(width=width)
    return [model[0].out_channels, model[3].out_channels, model[7].out_features]

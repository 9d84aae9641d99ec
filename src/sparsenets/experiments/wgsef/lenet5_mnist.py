"""`wgsef-lenet5-mnist`: WGSEF vs group lasso, magnitude pruning and Torch-Pruning GroupNorm on LeNet-5 / MNIST."""

from __future__ import annotations

from dataclasses import dataclass

from sparsenets.experiments.wgsef.study import StudyConfig, StudySpec, register_study
from sparsenets.models.cnn import LeNet5


@dataclass
class Config(StudyConfig):
    """Hyper-parameters of `wgsef-lenet5-mnist` (filters of both convs and the fc neurons are groups); the
    shared fields are documented on `StudyConfig`."""

    lam: float = 0.005  # best of {0.0025, 0.005, 0.01, 0.02, 0.04} on seed 0 (docs/methods/wgsef.md)
    lam_group_lasso: float = 0.003  # with wd 5e-4, 0.004 pruned past k (seed 1: 221 of 250 fc)


QUICK = {  # a smoke test: two seeds on 1k images
    "width": 0.5,
    "epochs": 1,
    "finetune_epochs": 1,
    "seeds": 2,
    "train_limit": 1024,
    "test_limit": 500,
    "latency_repeat": 3,
}


def _layer_sizes(model: LeNet5) -> list[int]:
    return [model[0].out_channels, model[3].out_channels, model[7].out_features]


SPEC = StudySpec(
    "mnist", LeNet5, _layer_sizes, "LeNet-5 / MNIST",
    "higher group sparsity at competitive accuracy (App. A.5, vs Bui et al.)", 3.0, 0.3,
)  # fmt: skip

register_study(
    "wgsef-lenet5-mnist",
    Config,
    SPEC,
    QUICK,
    "WGSEF exact-k filter/neuron sparsity on LeNet-5/MNIST vs group lasso, magnitude, TP GroupNorm",
)

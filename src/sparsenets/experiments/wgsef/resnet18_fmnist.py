"""`wgsef-resnet18-fmnist`: WGSEF vs baselines on ResNet-18 / Fashion-MNIST, where residual adds couple channels
across layers (each stage's residual stream is one group spanning every layer that feeds or reads it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsenets.experiments.wgsef.study import FASHION_QUICK, FashionStudyConfig, StudySpec, register_study
from sparsenets.groups import coupled_layouts
from sparsenets.models.cnn import ResNet18


@dataclass
class Config(FashionStudyConfig):
    """Hyper-parameters of `wgsef-resnet18-fmnist`: the Fashion-MNIST defaults it shares with `wgsef-vgg-fmnist`
    (width 1/8, 10k images, 3 + 1 epochs on a small CPU; raise them with --set where a GPU is available). Groups are the coupled output
    channels of every conv: the inner conv of each block, and the residual stream of each stage."""


SPEC = StudySpec(
    "fashion-mnist", ResNet18, lambda m: [lay.m for lay in coupled_layouts(m, torch.zeros(1, 1, 28, 28))],
    "ResNet-18 / Fashion-MNIST", "higher group sparsity, competitive accuracy, lower FLOPs (HSPG suite: ResNet18)",
    5.0, 0.5,
)  # fmt: skip

register_study(
    "wgsef-resnet18-fmnist",
    Config,
    SPEC,
    FASHION_QUICK,
    "WGSEF exact-k channel sparsity on ResNet-18/Fashion-MNIST vs group lasso, magnitude, TP GroupNorm",
)

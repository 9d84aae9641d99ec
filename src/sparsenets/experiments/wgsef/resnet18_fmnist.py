"""`wgsef-resnet18-fmnist`: WGSEF vs baselines on ResNet-18 / Fashion-MNIST, where residual adds couple channels
across layers (each stage's residual stream is one group spanning every layer that feeds or reads it)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from sparsenets.experiments.wgsef import vgg_fmnist as wgsef_vgg_fmnist
from sparsenets.experiments.wgsef.study import run_study
from sparsenets.groups import coupled_layouts
from sparsenets.models.cnn import ResNet18
from sparsenets.runs import RunContext, experiment


@dataclass
class Config(wgsef_vgg_fmnist.Config):
    """Hyper-parameters of `wgsef-resnet18-fmnist`: those of `wgsef-vgg-fmnist` (width 1/8, 10k images, 3 + 1
    epochs on a small CPU; raise them with --set where a GPU is available). Groups are the coupled output
    channels of every conv: the inner conv of each block, and the residual stream of each stage."""


@experiment(
    "wgsef-resnet18-fmnist",
    Config,
    quick=wgsef_vgg_fmnist.QUICK,
    description="WGSEF exact-k channel sparsity on ResNet-18/Fashion-MNIST vs group lasso, magnitude, TP GroupNorm",
)
def run(cfg: Config, ctx: RunContext) -> dict:
    """Train every method for each seed; write tables and figures; return the seed summary."""
    model = ResNet18(width=cfg.width)
    return run_study(
        cfg,
        ctx,
        "fashion-mnist",
        functools.partial(ResNet18, width=cfg.width),
        [lay.m for lay in coupled_layouts(model, torch.zeros(1, 1, 28, 28))],
        "ResNet-18 / Fashion-MNIST",
        "higher group sparsity, competitive accuracy, lower FLOPs (HSPG suite: ResNet18)",
        5.0,
        0.5,
    )

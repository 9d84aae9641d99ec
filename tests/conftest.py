"""Shared fixtures: a tiny registered experiment that exercises the runner without any dataset."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from sparsenets.runs import REGISTRY, RunContext, experiment
from sparsenets.train import TensorBatches, Trainer

torch.set_num_threads(1)


@dataclass
class ToyConfig:
    """A linear classifier on a fixed synthetic task."""

    steps: int = 60
    lr: float = 0.1
    width: int = 8
    checkpoint_every: int = 10


FAIL_AT = {"step": -1}  # tests set this to make the toy run crash at that step (not part of the config)


class Crash(RuntimeError):
    """Raised by the toy experiment to simulate a killed run."""


def toy_task(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """512 points in 8-d, labels from a fixed random hyperplane."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 8, generator=g)
    y = (x @ torch.randn(8, generator=g) > 0).long()
    return x, y


def run_toy(cfg: ToyConfig, ctx: RunContext) -> dict:
    """Train a 2-layer net on the toy task with the real Trainer."""
    from sparsenets.train.callbacks import Callback

    x, y = toy_task()
    model = torch.nn.Sequential(torch.nn.Linear(8, cfg.width), torch.nn.ReLU(), torch.nn.Linear(cfg.width, 2))

    class FailAt(Callback):
        def after_step(self, state):
            if state.step == FAIL_AT["step"]:
                raise Crash(f"simulated crash at step {state.step}")

    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9),
        TensorBatches(x, y, batch_size=32, seed=ctx.seed),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        cfg.steps,
        eval_fn=lambda m: {"accuracy": float((m(x).argmax(-1) == y).float().mean())},
        eval_every=20,
        callbacks=[FailAt()],
        run_dir=ctx.dir,
        checkpoint_every=cfg.checkpoint_every,
        log_every=5,
        progress=False,
    )
    hist = trainer.fit()
    return {
        "accuracy": hist[-1]["accuracy"],
        "weight_sum": float(sum(p.detach().sum() for p in model.parameters())),
    }


if "toy" not in REGISTRY:
    experiment(
        "toy",
        ToyConfig,
        quick={"steps": 20},
        description="toy task for tests",
        presets={"wide": {"width": 16, "lr": 0.05}},
    )(run_toy)


@pytest.fixture
def toy_name() -> str:
    """Name of the registered toy experiment."""
    return "toy"

"""`mlp-mnist`: a dense MLP on real MNIST; exercises data, trainer, checkpoints, DDP and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparsenets import data
from sparsenets.errors import ConfigError
from sparsenets.models import MLP
from sparsenets.runs import RunContext, experiment
from sparsenets.train import TensorBatches, Trainer
from sparsenets.train.metrics import evaluate_classifier


@dataclass
class Config:
    """Hyper-parameters of `mlp-mnist`."""

    hidden: tuple[int, ...] = (512, 512)
    dropout: float = 0.1
    batch_size: int = 128
    epochs: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    eval_every: int = 469
    checkpoint_every: int = 200
    train_limit: int = 0  # 0: all 60000 training images


MNIST_TRAIN = 60000


def _check(cfg: Config) -> None:
    """OneCycleLR needs its warm-up (10% of the steps) to last more than one step."""
    n = min(cfg.train_limit or MNIST_TRAIN, MNIST_TRAIN)
    if cfg.batch_size > n:
        raise ConfigError(f"mlp-mnist: batch_size {cfg.batch_size} exceeds the {n} training images; lower it")
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    if steps <= 10:
        raise ConfigError(
            f"mlp-mnist: {steps} training steps are too few for its one-cycle LR schedule (it needs more than 10); "
            "raise epochs or train_limit"
        )


@experiment(
    "mlp-mnist",
    Config,
    quick={"epochs": 1, "eval_every": 100, "checkpoint_every": 100},
    check=_check,
    description="Dense MLP on real MNIST (the foundation's end-to-end check)",
)
def run(cfg: Config, ctx: RunContext) -> dict:
    """Train the MLP; return final test accuracy and loss."""
    train, test = data.load("mnist", split="train"), data.load("mnist", split="test")
    x, y = train.x, train.y
    if cfg.train_limit:
        x, y = x[: cfg.train_limit], y[: cfg.train_limit]
    batches = TensorBatches(x, y, batch_size=cfg.batch_size, seed=ctx.seed)
    steps = cfg.epochs * batches.steps_per_epoch
    model = MLP(28 * 28, cfg.hidden, 10, dropout=cfg.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)

    def loss_fn(m: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xb, yb = batch
        return F.cross_entropy(m(xb), yb)

    def eval_fn(m: torch.nn.Module) -> dict[str, float]:
        return {f"test_{k}": v for k, v in evaluate_classifier(m, test.x, test.y).items()}

    trainer = Trainer(
        model,
        opt,
        batches,
        loss_fn,
        steps,
        eval_fn=eval_fn,
        eval_every=cfg.eval_every,
        scheduler=sched,
        run_dir=ctx.dir,
        checkpoint_every=cfg.checkpoint_every,
        device=ctx.device,
    )
    history = trainer.fit()
    final = history[-1]
    return {"test_accuracy": final["test_accuracy"], "test_loss": final["test_loss"], "steps": steps}

"""The Turbo-VBI rounds in any training loop: a plain driver (`TurboVBI`: `kl_loss()`, `step()`, `end_round()`)
and the Trainer callback that runs it (`TurboVBICallback`).

The w-step minimises the negative ELBO per training example, mean CE + β_t·Σ KL / N (N training examples; the
same optimum as −(N/B)·Σ_batch log-lik + β_t·KL), for `epochs_per_round` epochs; then every layer's ρ-step,
s-step, A→B message, Module B, s-step and ρ-step set the next round's priors (`model.update_layer`). β_t rises
linearly over the first `kl_anneal` of the rounds. In your own loop:

    vbi = TurboVBI(model, config, n_train=len(x), steps_per_epoch=len(x) // batch)
    for _ in range(vbi.total_steps):
        loss = F.cross_entropy(model(xb), yb) + vbi.kl_loss()
        opt.zero_grad(); loss.backward(); opt.step(); vbi.step()   # step() ends a round when it is due

(`loss = cross_entropy(...)`, then `loss.backward(); vbi.add_kl_grad()` is the same update, faster.)
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.train.callbacks import Callback, TrainState
from sparsenets.turbovbi.config import TurboVBIConfig
from sparsenets.turbovbi.model import bayesian_layers, update_layer


class KLDriver(Protocol):
    """What `VariationalCallback` drives: a KL term per step and a schedule advanced once per optimizer step."""

    def kl_loss(self) -> torch.Tensor: ...

    def step(self) -> bool: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def check_sizes(n_train: int, steps_per_epoch: int) -> None:
    """ConfigError unless both are positive integers."""
    for name, v in (("n_train", n_train), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(
                f"{name} must be a positive integer (training examples / optimizer steps); got {v!r}"
            )


class TurboVBI:
    """Drives Turbo-VBI's rounds on a converted model (see the module docstring for the loop).

    Args:
        model: a model after `convert(model, config)`.
        config: the same config as `convert`.
        n_train: N, the number of training examples (the KL is divided by it).
        steps_per_epoch: optimizer steps per epoch (a round is `epochs_per_round` epochs of them).
    """

    def __init__(self, model: nn.Module, config: TurboVBIConfig, n_train: int, steps_per_epoch: int) -> None:
        check_sizes(n_train, steps_per_epoch)
        self.model, self.config, self.n_train = model, config, n_train
        self.layers = bayesian_layers(model)
        if not self.layers:
            raise ConfigError(
                "TurboVBI needs a converted model: call sparsenets.turbovbi.convert(model) first"
            )
        self.steps_per_round = steps_per_epoch * config.epochs_per_round
        self.round, self.steps = 0, 0
        self.history: list[dict[str, float]] = []

    @property
    def total_steps(self) -> int:
        """Optimizer steps of all rounds."""
        return self.steps_per_round * self.config.rounds

    @property
    def done(self) -> bool:
        """True once every round has ended."""
        return self.round >= self.config.rounds

    @property
    def beta(self) -> float:
        """The KL weight of the current round."""
        return self.config.beta(min(self.round, self.config.rounds - 1))

    def kl(self) -> torch.Tensor:
        """Σ KL over every Bayesian layer (scalar)."""
        return torch.stack([layer.kl() for _, layer in self.layers]).sum()

    def kl_loss(self) -> torch.Tensor:
        """β_t·Σ KL / N: add it to the mean cross-entropy of a batch (scalar, differentiable)."""
        return self.kl() * (self.beta / self.n_train)

    def add_kl_grad(self) -> None:
        """Add the gradient of `kl_loss()` to the parameters' gradients in closed form, after `backward()` of
        the plain loss: the same update as backpropagating `kl_loss()`, without its autograd graph (faster)."""
        scale = self.beta / self.n_train
        for _, layer in self.layers:
            layer.add_kl_grad_(scale)

    def step(self) -> bool:
        """Count one optimizer step; at the end of a round's w-step run `end_round`. Returns True when it did."""
        self.steps += 1
        if not self.done and self.steps % self.steps_per_round == 0:
            self.end_round()
            return True
        return False

    def end_round(self) -> dict[str, float]:
        """Module A's ρ/s-steps and Module B on every layer (`update_layer`); returns the round's means."""
        stats = [update_layer(layer, name, self.config) for name, layer in self.layers]
        record = {"round": float(self.round), "beta": self.beta}
        for key in stats[0]:
            record[key] = sum(s[key] for s in stats) / len(stats)
        self.history.append(record)
        self.round += 1
        return record

    def state_dict(self) -> dict[str, Any]:
        """Round and step counters (the per-layer state are model buffers, checkpointed with the model)."""
        return {"round": self.round, "steps": self.steps, "history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s counters."""
        self.round, self.steps = int(state["round"]), int(state["steps"])
        self.history = list(state.get("history", []))


class VariationalCallback(Callback):
    """Runs a KL driver inside `Trainer`: the gradient of `driver.kl_loss()` is added after the loss's backward
    (`driver.add_kl_grad()` where it has one), so the Trainer's loss_fn stays the plain mean cross-entropy, and
    `driver.step()` after each step."""

    def __init__(self, driver: KLDriver) -> None:
        self.driver = driver

    def after_backward(self, state: TrainState) -> None:
        add = getattr(self.driver, "add_kl_grad", None)  # the closed form where the driver has one
        if add is not None:
            add()
        else:
            self.driver.kl_loss().backward()

    def after_step(self, state: TrainState) -> None:
        self.driver.step()

    def state_dict(self) -> dict[str, Any]:
        return self.driver.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.driver.load_state_dict(state)


class TurboVBICallback(VariationalCallback):
    """The Turbo-VBI rounds as a Trainer callback (train for `self.vbi.total_steps` steps); args as `TurboVBI`."""

    def __init__(self, model: nn.Module, config: TurboVBIConfig, n_train: int, steps_per_epoch: int) -> None:
        self.vbi = TurboVBI(model, config, n_train, steps_per_epoch)
        super().__init__(self.vbi)

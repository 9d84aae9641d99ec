"""The compression-adapter interface and its registry (core): how a compression method plugs into the shared
protocol. Each method package registers its adapter when imported (PEFT's `register_peft_method` pattern), so
adding one edits no central list; `sparsenets.compare` runs every registered adapter the same way.

An adapter only *sparsifies*: from the trained dense model (or from init) to a model whose fate is decided —
a structured `ProxOptimizer` waiting for its exact top-k, an already physically smaller model, or masks
(unstructured). Selection, fine-tuning, compaction and measurement are the protocol's, identical for all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.train.callbacks import Callback

# train(model, optimizer, epochs, callbacks): the caller's training loop on its data (batches, loss, device)
TrainFn = Callable[[nn.Module, torch.optim.Optimizer, int, Sequence[Callback]], None]


@dataclass
class SparsifyContext:
    """What an adapter gets: the models, the budget and the caller's training loop.

    Attributes:
        make_model: a fresh model at its (seeded) initialisation.
        dense: the trained dense model (the adapter's own copy: it may change it in place).
        init_state: the dense run's initial weights θ0 (for rewinding).
        example: (1, ...) one input (tracing, FLOPs).
        keep: keep ratio of groups per prunable layer (structured), or of weights (unstructured).
        round_to: kept group counts rounded to a multiple of this.
        epochs: epochs of the sparsifying phase (a penalty phase, or IMP's retraining per round).
        lr: learning rate of the sparsifying phase.
        weight_decay: weight decay of the caller's SGD.
        train: the caller's training loop (see `TrainFn`).
        options: per-method hyper-parameters by name (e.g. "wgsef_lam", "tp_reg").
    """

    make_model: Callable[[], nn.Module]
    dense: nn.Module
    init_state: dict[str, torch.Tensor]
    example: torch.Tensor
    keep: float
    round_to: int
    epochs: int
    lr: float
    weight_decay: float
    train: TrainFn
    options: dict[str, Any] = field(default_factory=dict)

    def sgd(self, model: nn.Module, lr: float | None = None, params: Any = None) -> torch.optim.SGD:
        """The protocol's SGD (momentum 0.9, the caller's weight decay) over `params` (default: all)."""
        return torch.optim.SGD(
            model.parameters() if params is None else params,
            lr=self.lr if lr is None else lr,
            momentum=0.9,
            weight_decay=self.weight_decay,
        )

    def prox_train(
        self,
        blocks: Sequence[ProxBlock],
        params: Any = None,
        callbacks: Sequence[Callback] = (),
        extra: dict[str, Any] | None = None,
    ) -> Sparsified:
        """Train `dense` for `epochs` with a ProxOptimizer over `blocks` (their prox after every SGD step;
        `callbacks` add e.g. a regularizer's gradient) and hand it to the protocol for the exact top-k."""
        opt = ProxOptimizer(self.sgd(self.dense, params=params), blocks)
        self.train(self.dense, opt, self.epochs, callbacks)
        return Sparsified(self.dense, optimizer=opt, extra=dict(extra or {}))

    def option(self, name: str, default: Any) -> Any:
        """A per-method hyper-parameter, or its default."""
        return self.options.get(name, default)


@dataclass
class Sparsified:
    """An adapter's result: exactly one of `optimizer` (structured: the exact top-k is still to come),
    `compacted` (structured: already physically smaller) or `masks` (unstructured: {name: bool mask}).

    Attributes:
        model: the sparsified model.
        optimizer: a ProxOptimizer over `model` whose `finalize()` keeps exactly the budgeted groups.
        compacted: True when `model` is already the smaller ordinary module.
        masks: unstructured masks in force on `model` (compression only: no latency claim).
        extra: anything the adapter wants recorded (e.g. its per-layer λ).
    """

    model: nn.Module
    optimizer: ProxOptimizer | None = None
    compacted: bool = False
    masks: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Adapter:
    """A compression method as the comparison sees it. Subclasses set the class attributes and `sparsify`.

    Attributes:
        name: registry key, e.g. "wgsef".
        label: the name in tables and figures.
        structured: True when the result is compacted (params, FLOPs and latency fall); False for masks only.
        from_dense: True when it starts from the trained dense model (False: from init, trained by itself).
        sparse_training: True when it trains with a penalty before the cut (the one-shot methods instead
            fine-tune that many epochs longer, so every method trains equally long).
        fine_tunes: True when the protocol fine-tunes its result (False: the adapter's own retraining ends it).
    """

    name = ""
    label = ""
    structured = True
    from_dense = True
    sparse_training = False
    fine_tunes = True

    def sparsify(self, ctx: SparsifyContext) -> Sparsified:
        """Sparsify per `ctx` (see `Sparsified`)."""
        raise NotImplementedError


ADAPTERS: dict[str, Adapter] = {}


def register_adapter(cls: type[Adapter]) -> type[Adapter]:
    """Class decorator: register one instance of an `Adapter` subclass under its `name`."""
    if not cls.name or (cls.name in ADAPTERS and type(ADAPTERS[cls.name]) is not cls):
        raise ConfigError(f"adapter {cls.__name__} needs a unique, non-empty name; got {cls.name!r}")
    ADAPTERS[cls.name] = cls()
    return cls

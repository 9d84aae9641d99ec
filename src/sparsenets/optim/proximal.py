"""`ProxOptimizer`: any torch optimizer made proximal over group layouts.

The structured prox itself is passed in as a function of the group norms (`sparsenets.prox.PROXES`), so this
module works for WGSEF, group lasso or any other "norms → multipliers" operator without depending on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.prox.checks import check_finite_norms, check_weights
from sparsenets.train.loop import FINITE_CHECK_EVERY

# prox(r (m,), k, tau, weights (m,) | None) -> multipliers (m,), given finite r and valid weights;
# select(r, k, weights) -> 0/1 keep (m,)
ProxFn = Callable[[torch.Tensor, int, float, torch.Tensor | None], torch.Tensor]
SelectFn = Callable[[torch.Tensor, int, torch.Tensor | None], torch.Tensor]


def kept_count(m: int, keep: float, round_to: int = 1) -> int:
    """Groups to keep of `m` for a keep ratio: round(keep·m), then to the nearest multiple of `round_to` (at
    least one multiple, at most m). Channel counts that are multiples of the CPU's vector width (8 or 16 floats)
    run their convolutions faster (docs/benchmarks/compact-counts.md), as Torch-Pruning's `round_to` does.

    Args:
        m: number of groups (>= 1).
        keep: keep ratio in (0, 1].
        round_to: multiple to round to (>= 1; 1 = no rounding).
    """
    if m < 1:
        raise SparsenetsError(f"a layer needs at least one group; got m={m}")
    if not 0 < keep <= 1:
        raise SparsenetsError(f"keep ratio must be in (0, 1]; got {keep}")
    _check_round_to(round_to)
    k = max(1, round(keep * m))
    if round_to > 1:
        k = max(round_to, round_to * round(k / round_to))
    return min(k, m)


def _check_round_to(round_to: int) -> None:
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise SparsenetsError(f"round_to must be an integer >= 1 (1 = no rounding); got {round_to!r}")


@dataclass
class ProxBlock:
    """One regularized block: its group layout, the groups to keep and the penalty strength.

    Attributes:
        layout: the groups (see `sparsenets.groups`).
        k: groups to keep: an int count (1..m) or a keep ratio in (0, 1).
        lam: penalty weight λ; the prox step is τ = lr·λ·ramp.
        prox: the structured prox as a function of the group norms, e.g. `sparsenets.prox.PROXES["wgsef"]`;
            None: no penalty (only the final hard selection, as in magnitude pruning).
        weights: "ones", "size" (w_j = group size) or an (m,) tensor of positive costs.
        round_to: a keep ratio's count is rounded to a multiple of this (`kept_count`); an int k is kept as is.
    """

    layout: GroupLayout
    k: int | float
    lam: float
    prox: ProxFn | None = None
    weights: str | torch.Tensor = "ones"
    round_to: int = 1

    def __post_init__(self) -> None:
        m = self.layout.m
        _check_round_to(self.round_to)
        if isinstance(self.k, float) and not self.k.is_integer():
            if not 0 < self.k < 1:
                raise SparsenetsError(f"k as a keep ratio must be in (0, 1); got {self.k}")
            self.k = kept_count(m, self.k, self.round_to)
        self.k = int(self.k)
        if not 1 <= self.k <= m:
            raise SparsenetsError(
                f"block {self.layout.name!r}: k must be between 1 and {m} groups; got {self.k}"
            )
        if self.lam < 0:
            raise SparsenetsError(f"block {self.layout.name!r}: lam must be >= 0; got {self.lam}")
        if self.prox is not None and not callable(self.prox):
            raise SparsenetsError(
                f"prox must be a function (r, k, tau, weights) -> multipliers; got {self.prox!r}"
            )
        if isinstance(self.weights, str):
            if self.weights not in ("ones", "size"):
                raise SparsenetsError(f"weights must be 'ones', 'size' or a tensor; got {self.weights!r}")
            self.w = None if self.weights == "ones" else self.layout.sizes()
        else:
            self.w = check_weights(self.weights, m, torch.empty(0, dtype=torch.float64))  # once, not per step

    def multipliers(self, tau: float, r: torch.Tensor | None = None) -> torch.Tensor:
        """(m,) prox multipliers at step τ for the current parameters (r: their (m,) group norms, if known)."""
        if r is None:
            r = self.layout.norms()
            check_finite_norms(r)
        w = self.weights_on(r.device)
        return torch.ones_like(r) if self.prox is None else self.prox(r, self.k, tau, w)

    def weights_on(self, device: torch.device) -> torch.Tensor | None:
        """The (m,) group weights on `device` (None for unit weights); moved once if the model was moved."""
        if self.w is not None and self.w.device != device:
            self.w = self.w.to(device)
        return self.w

    def kept(self) -> int:
        """Number of nonzero groups now."""
        return int(torch.count_nonzero(self.layout.norms()))


def decay_free_groups(
    model: nn.Module, blocks: Sequence[ProxBlock], weight_decay: float
) -> list[dict[str, Any]]:
    """Optimizer param groups with no weight decay on the blocks' tensors and `weight_decay` on the rest.

    The spec's advice for WGSEF: its penalty already puts a ridge on every kept group, so weight decay on those
    tensors would add a second, momentum-amplified shrinkage the envelope does not model. Pass the result to any
    torch optimizer (`torch.optim.SGD(decay_free_groups(model, blocks, 5e-4), lr=0.05, momentum=0.9)`); groups
    with no parameters are left out.

    Args:
        model: the model the blocks' layouts were built on.
        blocks: the regularized blocks; every parameter any of their layouts touches gets weight decay 0.
        weight_decay: the decay of every other parameter (>= 0).
    """
    if not weight_decay >= 0:  # also catches NaN
        raise SparsenetsError(f"weight_decay must be >= 0; got {weight_decay}")
    penalized = {id(p) for b in blocks for p in b.layout.params}
    params = list(model.parameters())
    missing = penalized - {id(p) for p in params}
    if missing:
        raise SparsenetsError(
            f"{len(missing)} tensors of the blocks are not parameters of the model; build the blocks on it"
        )
    free = [p for p in params if id(p) in penalized]
    decayed = [p for p in params if id(p) not in penalized]
    groups = [{"params": free, "weight_decay": 0.0}, {"params": decayed, "weight_decay": weight_decay}]
    return [g for g in groups if g["params"]]


class ProxOptimizer:
    """Wrap `optimizer`: after each of its steps apply, per block, the prox with τ = lr·λ·ramp(step).

    Blocks that share a parameter (coupled layouts overlap: a filter's group holds the next layer's input slice)
    are applied one after the other, each on the result of the ones before; blocks that share none are solved
    together (`stages`: greedy in block order, so a chain of layers runs as even blocks, then odd blocks) — with
    a `batched` prox that is one set of kernels per stage instead of one per layer.
    Deterministic given the parameters (no randomness, no cross-rank traffic), so under DDP every rank, holding
    identical parameters after the gradient all-reduce, computes the identical prox.
    With Adam the prox step lr·λ is a heuristic (the prox assumes an isotropic step); SGD(momentum) is the method.

    Args:
        optimizer: any torch optimizer over the model parameters.
        blocks: the regularized blocks.
        select: the final hard selection, e.g. `sparsenets.prox.topk_multipliers` (needed by `finalize`).
        warmup_steps: λ ramps linearly from 0 to its value over these steps (0: no ramp).
        check_every: steps between host reads of the "all group norms finite" flag (NaN/inf weights raise at the
            next read, and always before `state_dict`, `finalize` and `kept`); default 1 on the CPU, where a
            read is free, and 64 on a GPU, where a read per step stalls the queue.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        blocks: Sequence[ProxBlock],
        select: SelectFn | None = None,
        warmup_steps: int = 0,
        check_every: int | None = None,
    ) -> None:
        self.optimizer, self.blocks, self.warmup_steps = optimizer, list(blocks), int(warmup_steps)
        self.select = select
        if check_every is not None and (
            isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1
        ):
            raise SparsenetsError(
                f"check_every must be an integer >= 1 (steps between finiteness checks); got {check_every!r}"
            )
        self.check_every = check_every
        self._norm_sum: torch.Tensor | None = None  # device-side sum of every unchecked step's group norms
        self.steps_done = 0
        self.frozen: list[torch.Tensor] | None = None  # 0/1 keep masks once `hold_mask` was called
        for b in self.blocks:
            b.group_index = self._group_of(b)
        self.stages = _stages(self.blocks)

    def _group_of(self, block: ProxBlock, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Index of the param group (of `optimizer`, default the wrapped one) holding the block's first parameter
        (its lr sets τ)."""
        target = block.layout.params[0]
        for i, g in enumerate((optimizer or self.optimizer).param_groups):
            if any(p is target for p in g["params"]):
                return i
        raise SparsenetsError(f"block {block.layout.name!r}: its parameters are not in the wrapped optimizer")

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def ramp(self) -> float:
        """Current λ multiplier in [0, 1]."""
        return 1.0 if self.warmup_steps <= 0 else min(1.0, self.steps_done / self.warmup_steps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """The wrapped step, then the prox (or the fixed masks after `hold_mask`)."""
        loss = self.optimizer.step(closure)
        self.steps_done += 1
        if self.frozen is not None:
            for b, keep in zip(self.blocks, self.frozen):
                b.layout.scale_(keep)
            return loss
        ramp = self.ramp()
        norms = []
        for stage in self.stages:  # stages in order: each sees the previous stages' result
            norms += [r for _, r in self._prox_stage(stage, ramp)]
        if norms:  # summed on the device: NaN or inf in any block makes the sum non-finite
            total = torch.cat(norms).sum()
            self._norm_sum = total if self._norm_sum is None else self._norm_sum + total
            every = self.check_every or (1 if total.device.type == "cpu" else FINITE_CHECK_EVERY)
            if self.steps_done % every == 0:
                self._verify_finite()
        return loss

    def _verify_finite(self) -> None:
        """Raise, naming the first bad block, if any group norm since the last check was NaN or inf (one host
        read covers every unchecked step; a diverged model stays non-finite, so its blocks are named now)."""
        if self._norm_sum is None:
            return
        total, self._norm_sum = self._norm_sum, None
        if math.isfinite(float(total)):
            return
        names = [b.layout.name for b in self.blocks if not bool(torch.isfinite(b.layout.norms()).all())]
        bad = repr(names[0]) if names else "a block (finite again now)"
        raise SparsenetsError(
            f"block {bad} has NaN or inf weights (the loss diverged?); lower the learning rate or λ, "
            "or resume from the last checkpoint"
        )

    def _prox_stage(self, stage: list[ProxBlock], ramp: float) -> list[tuple[ProxBlock, torch.Tensor]]:
        """Apply the prox of every penalized block of one stage (no two share a parameter), one solve per distinct
        prox function when it has a `batched` form; returns (block, its (m,) group norms before the prox)."""
        todo = []
        for b in stage:
            tau = self.optimizer.param_groups[b.group_index]["lr"] * b.lam * ramp
            if tau > 0 and b.prox is not None:
                todo.append((b, tau, b.layout.norms()))
        done = []
        for fn in dict.fromkeys(b.prox for b, _, _ in todo):
            part = [(b, tau, r) for b, tau, r in todo if b.prox is fn]
            batched = getattr(fn, "batched", None)
            if batched is not None and len(part) > 1:
                cs = batched(
                    [r for _, _, r in part],
                    [b.k for b, _, _ in part],
                    [tau for _, tau, _ in part],
                    [b.weights_on(r.device) for b, _, r in part],
                )
            else:
                cs = [b.multipliers(tau, r) for b, tau, r in part]
            for (b, _, r), c in zip(part, cs):
                b.layout.scale_(c)
                done.append((b, r))
        return done

    @torch.no_grad()
    def finalize(self) -> list[torch.Tensor]:
        """Hard top-k per block (ranked by r/√w): every block ends with exactly k nonzero groups.
        Returns the (m,) 0/1 keep vectors."""
        if self.select is None:
            raise SparsenetsError(
                "finalize needs a selection: ProxOptimizer(..., select=sparsenets.prox.topk_multipliers)"
            )
        self._verify_finite()
        keeps = []
        for b in self.blocks:
            keep = self.select(b.layout.norms(), b.k, b.w)
            b.layout.scale_(keep)
            keeps.append(keep)
        return keeps

    def hold_mask(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Finalize and from now on only re-apply the masks after each step (fine-tuning with a fixed mask).

        Args:
            optimizer: if given, fine-tuning steps with it instead (e.g. a fresh SGD at the fine-tuning LR and
                weight decay, so every method fine-tunes alike); it must hold the blocks' parameters.
        """
        if optimizer is not None:
            indices = [self._group_of(b, optimizer) for b in self.blocks]  # checked before anything changes
            self.optimizer = optimizer
            for b, i in zip(self.blocks, indices):
                b.group_index = i
        self.frozen = self.finalize()

    def kept(self) -> list[int]:
        """Nonzero groups per block."""
        self._verify_finite()
        return [b.kept() for b in self.blocks]

    def state_dict(self) -> dict[str, Any]:
        self._verify_finite()  # a checkpoint never holds a diverged model
        return {
            "optimizer": self.optimizer.state_dict(),
            "steps_done": self.steps_done,
            "frozen": None if self.frozen is None else [f.clone() for f in self.frozen],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps_done = int(state["steps_done"])
        frozen = state["frozen"]  # masks go where their block's parameters are: no copy per step after resume
        self.frozen = (
            None
            if frozen is None
            else [torch.as_tensor(f).to(b.layout.params[0].device) for f, b in zip(frozen, self.blocks)]
        )


def _stages(blocks: Sequence[ProxBlock]) -> list[list[ProxBlock]]:
    """Blocks grouped so that no two in a group share a parameter: each block joins the first group it does not
    overlap (greedy, in block order)."""
    stages: list[list[ProxBlock]] = []
    used: list[set[int]] = []
    for b in blocks:
        ids = {id(p) for p in b.layout.params}
        for stage, taken in zip(stages, used):
            if not ids & taken:
                stage.append(b)
                taken |= ids
                break
        else:
            stages.append([b])
            used.append(set(ids))
    return stages

"""`ProxOptimizer`: any torch optimizer made proximal over group layouts.

The structured prox itself is passed in as a function of the group norms (`sparsenets.prox.PROXES`), so this
module works for WGSEF, group lasso or any other "norms → multipliers" operator without depending on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.prox.checks import check_finite_norms, check_weights
from sparsenets.prox.registry import PROXES
from sparsenets.prox.simple import topk_multipliers
from sparsenets.train.loop import FINITE_CHECK_EVERY

# prox(r (m,), k, tau, weights (m,) | None) -> multipliers (m,), given finite r and valid weights;
# select(r, k, weights) -> 0/1 keep (m,)
ProxFn = Callable[[torch.Tensor, int, float, torch.Tensor | None], torch.Tensor]
SelectFn = Callable[[torch.Tensor, int, torch.Tensor | None], torch.Tensor]


def kept_count(m: int, keep: int | float, round_to: int = 1, minimum: int = 1) -> int:
    """Groups to keep of `m` for a budget `keep`, the library's one way to state a budget.

    A float in (0, 1] is a keep ratio (1.0 keeps every group): round(keep·m), then to the nearest multiple of
    `round_to` (at least one multiple, at most m). An int >= 1 is a count, kept as is (at most m). Torch-Pruning's
    `pruning_ratio` p is `keep = 1 - p`. Channel counts that are multiples of the CPU's vector width (8 or 16
    floats) run their convolutions faster (docs/benchmarks/compact-counts.md), as Torch-Pruning's `round_to` does.

    Args:
        m: number of groups (>= 1).
        keep: keep ratio in (0, 1] (float) or group count in 1..m (int).
        round_to: multiple a ratio's count is rounded to (>= 1; 1 = no rounding).
        minimum: the fewest a ratio keeps: 1 for structured groups (a layer keeps a group), 0 for weights
            (a tiny tensor may be pruned entirely).
    """
    if m < 1:
        raise SparsenetsError(f"a layer needs at least one group; got m={m}")
    _check_round_to(round_to)
    if isinstance(check_keep(keep), int):
        if keep > m:
            raise SparsenetsError(f"keep as a count must be between 1 and {m} groups; got {keep}")
        return keep
    k = max(minimum, round(keep * m))
    if round_to > 1:
        k = max(round_to, round_to * round(k / round_to))
    return min(k, m)


def check_keep(keep: int | float) -> int | float:
    """`keep` if it is a budget: a ratio in (0, 1] (float) or a count >= 1 (int); one clear error otherwise."""
    if isinstance(keep, bool) or not isinstance(keep, int | float):
        raise SparsenetsError(f"keep must be a ratio in (0, 1] (float) or a count >= 1 (int); got {keep!r}")
    if isinstance(keep, int) and keep < 1:
        raise SparsenetsError(f"keep as a count must be between 1 and the number of groups; got {keep}")
    if isinstance(keep, float) and not 0 < keep <= 1:
        raise SparsenetsError(
            f"keep ratio must be in (0, 1] (1.0 keeps all; pruning_ratio p is keep = 1 - p); got {keep}"
        )
    return keep


def _check_round_to(round_to: int) -> None:
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise SparsenetsError(f"round_to must be an integer >= 1 (1 = no rounding); got {round_to!r}")


@dataclass
class ProxBlock:
    """One regularized block: its group layout, its budget and the penalty strength.

    Attributes:
        layout: the groups (see `sparsenets.groups`).
        keep: the budget (`kept_count`): a keep ratio in (0, 1] (float; 1.0 keeps all) or a group count (int).
            The resolved count is `k`.
        lam: penalty weight λ; the prox step is τ = lr·λ·ramp.
        prox: the structured prox: a name in `sparsenets.prox.PROXES` ("wgsef", the default, or "group_lasso"),
            "none" for no penalty (only the final hard selection, as in magnitude pruning), or a function
            (r (m,), k, tau, weights) -> (m,) multipliers.
        weights: "ones", "size" (w_j = group size) or an (m,) tensor of positive costs.
        round_to: a keep ratio's count is rounded to a multiple of this; a count is kept as is.
    """

    layout: GroupLayout
    keep: int | float
    lam: float
    prox: str | ProxFn = "wgsef"
    weights: str | torch.Tensor = "ones"
    round_to: int = 1
    k: int = field(init=False)
    prox_fn: ProxFn | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        m = self.layout.m
        try:
            self.k = kept_count(m, self.keep, self.round_to)
        except SparsenetsError as err:
            raise SparsenetsError(f"block {self.layout.name!r}: {err}") from None
        if not self.lam >= 0:  # also catches NaN
            raise SparsenetsError(f"block {self.layout.name!r}: lam must be >= 0; got {self.lam}")
        self.prox_fn = _resolve_prox(self.prox)
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
        return torch.ones_like(r) if self.prox_fn is None else self.prox_fn(r, self.k, tau, w)

    def weights_on(self, device: torch.device) -> torch.Tensor | None:
        """The (m,) group weights on `device` (None for unit weights); moved once if the model was moved."""
        if self.w is not None and self.w.device != device:
            self.w = self.w.to(device)
        return self.w

    def kept(self) -> int:
        """Number of nonzero groups now."""
        return int(torch.count_nonzero(self.layout.norms()))


def _resolve_prox(prox: str | ProxFn) -> ProxFn | None:
    """A block's prox as a function of the group norms (None for "none": selection only, no penalty)."""
    if isinstance(prox, str):
        if prox == "none":
            return None
        if prox not in PROXES:
            raise SparsenetsError(f"prox must be one of {[*PROXES, 'none']} or a function; got {prox!r}")
        return PROXES[prox]
    if not callable(prox):
        raise SparsenetsError(
            f"prox must be a name in {[*PROXES, 'none']} or a function (r, k, tau, weights) -> multipliers; "
            f"got {prox!r}"
        )
    return prox


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


class ProxOptimizer(torch.optim.Optimizer):
    """A `torch.optim.Optimizer` that wraps `optimizer`: after each of its steps apply, per block, the prox with
    τ = lr·λ·ramp(step).

    It shares the wrapped optimizer's `param_groups` and `state`, so LR schedulers (`StepLR(opt, ...)`), gradient
    clipping and a plain loop (`loss.backward(); opt.step(); opt.zero_grad()`) drive it as they drive any
    optimizer. Blocks that share a parameter (coupled layouts overlap: a filter's group holds the next layer's
    input slice) are applied one after the other, each on the result of the ones before; blocks that share none
    are solved together (`stages`: greedy in block order, so a chain of layers runs as even blocks, then odd
    blocks) — with a `batched` prox that is one set of kernels per stage instead of one per layer.
    Deterministic given the parameters (no randomness, no cross-rank traffic), so under DDP every rank, holding
    identical parameters after the gradient all-reduce, computes the identical prox.
    With Adam the prox step lr·λ is a heuristic (the prox assumes an isotropic step); SGD(momentum) is the method.

    Args:
        optimizer: any torch optimizer over the model parameters.
        blocks: the regularized blocks.
        select: the final hard selection (r, k, weights) -> 0/1 keep; default the exact top-k by r/√w
            (`sparsenets.prox.topk_multipliers`).
        warmup_steps: λ ramps linearly from 0 to its value over these steps (0: no ramp).
        check_every: steps between host reads of the "all group norms finite" flag (NaN/inf weights raise at the
            next read, and always before `state_dict`, `finalize` and `kept`); default 1 on the CPU, where a
            read is free, and 64 on a GPU, where a read per step stalls the queue.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        blocks: Sequence[ProxBlock],
        select: SelectFn | None = topk_multipliers,
        warmup_steps: int = 0,
        check_every: int | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise SparsenetsError(
                f"ProxOptimizer wraps a torch.optim.Optimizer (e.g. torch.optim.SGD); got {type(optimizer).__name__}"
            )
        # the base class sets up hooks and profiling; the groups and state are the wrapped optimizer's own
        super().__init__([{"params": []}], dict(optimizer.defaults))
        self._wrap(optimizer)
        self.blocks, self.warmup_steps = list(blocks), int(warmup_steps)
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

    def _wrap(self, optimizer: torch.optim.Optimizer) -> None:
        """Step with `optimizer`, sharing its param groups and state (what schedulers and clipping read)."""
        self.optimizer = optimizer
        self.param_groups = optimizer.param_groups
        self.state = optimizer.state
        self.defaults = optimizer.defaults

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to the wrapped optimizer (before `_wrap`, the base class's placeholder is skipped)."""
        if "optimizer" in self.__dict__:
            self.optimizer.add_param_group(param_group)

    def _group_of(self, block: ProxBlock, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Index of the param group (of `optimizer`, default the wrapped one) holding the block's first parameter
        (its lr sets τ)."""
        target = block.layout.params[0]
        for i, g in enumerate((optimizer or self.optimizer).param_groups):
            if any(p is target for p in g["params"]):
                return i
        raise SparsenetsError(f"block {block.layout.name!r}: its parameters are not in the wrapped optimizer")

    def ramp(self) -> float:
        """Current λ multiplier in [0, 1]."""
        return 1.0 if self.warmup_steps <= 0 else min(1.0, self.steps_done / self.warmup_steps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradients of the wrapped optimizer's parameters."""
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
            if tau > 0 and b.prox_fn is not None:
                todo.append((b, tau, b.layout.norms()))
        done = []
        for fn in dict.fromkeys(b.prox_fn for b, _, _ in todo):
            part = [(b, tau, r) for b, tau, r in todo if b.prox_fn is fn]
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
            self._wrap(optimizer)
            for b, i in zip(self.blocks, indices):
                b.group_index = i
        self.frozen = self.finalize()

    def kept(self) -> list[int]:
        """Nonzero groups per block."""
        self._verify_finite()
        return [b.kept() for b in self.blocks]

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state, the step count and the held masks (a checkpoint never holds NaN)."""
        self._verify_finite()  # a checkpoint never holds a diverged model
        return {
            "optimizer": self.optimizer.state_dict(),
            "steps_done": self.steps_done,
            "frozen": None if self.frozen is None else [f.clone() for f in self.frozen],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
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

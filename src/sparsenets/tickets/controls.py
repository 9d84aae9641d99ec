"""The masks a lottery ticket is compared with, for stacked networks: the ticket itself, random, PaI, norm ratios.

Every function works on ensembles (weights (E, ...), see `sparsenets.tickets.members`) and prunes each member on
its own, so one call gives the masks of every seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.tickets.prune import magnitude_scores, prune_members
from sparsenets.tickets.rewind import norm_ratio
from sparsenets.tickets.scores import grasp_scores, snip_scores, synflow_masks

Tensors = dict[str, torch.Tensor]
CONTROL_KINDS = ("magnitude", "random", "snip", "grasp", "synflow")


def control_masks(
    kind: str,
    init: nn.Module,
    names: Sequence[str] | None,
    keep: float | int,
    *,
    trained: Tensors | None = None,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    grasp_temperature: float = 200.0,
    synflow_rounds: int = 100,
    ones_input: torch.Tensor | None = None,
    scope: str = "global",
) -> Tensors:
    """Stacked masks name → (E, ...) bool of one kind for the ensemble `init` (weights at θ0).

    Args:
        kind: "magnitude" (|θ| of `trained`: the ticket), "random" (uniform, the same count per `scope` unit),
            "snip", "grasp" (on `batch`, logits / `grasp_temperature` for GraSP) or "synflow" (data-free, on
            `ones_input`, `synflow_rounds` rounds).
        init: the ensemble at initialization (not modified).
        names: parameters to prune (all of `trained` for "magnitude").
        keep: fraction kept in (0, 1] or a count, per member (see `prune_by_scores`).
        trained: name → (E, ...) trained weights, for "magnitude".
        batch: (x (B, ...), y int64 (B,)), the training batch for "snip" and "grasp".
        generator: random source of "random".
        grasp_temperature: GraSP divides the logits by it (200 in the Synaptic-Flow code).
        synflow_rounds: SynFlow's pruning rounds.
        ones_input: an all-ones input the ensemble accepts, for "synflow".
        scope: "global" or "layer", for "magnitude" and "random"; the PaI methods rank globally.
    """
    if kind not in CONTROL_KINDS:
        raise SparsenetsError(f"unknown mask kind {kind!r}; pick one of {CONTROL_KINDS}")
    if kind == "magnitude":
        if trained is None:
            raise SparsenetsError("magnitude masks need the trained weights: pass trained=")
        return prune_members(magnitude_scores(trained), keep, scope=scope)
    params = dict(init.named_parameters())
    if kind == "random":
        scores = {n: torch.rand(params[n].shape, generator=generator) for n in names}
        return prune_members(scores, keep, scope=scope)
    if kind == "synflow":
        if ones_input is None:
            raise SparsenetsError("synflow masks need an all-ones input: pass ones_input=")
        return synflow_masks(init, lambda m: m(ones_input), names, keep, rounds=synflow_rounds, stacked=True)
    if batch is None:
        raise SparsenetsError(f"{kind} masks need a training batch: pass batch=(x, y)")
    temp = grasp_temperature if kind == "grasp" else 1.0
    x, y = batch

    def loss(m: nn.Module) -> torch.Tensor:
        logits = m(x) / temp  # (E, B, C): every member's mean loss, summed
        flat = logits.reshape(-1, logits.shape[-1])
        return F.cross_entropy(flat, y.repeat(logits.shape[0]), reduction="sum") / x.shape[0]

    scorer = snip_scores if kind == "snip" else grasp_scores
    return prune_members(scorer(init, loss, names), keep)


def member_norm_ratios(init: Tensors, masks: Tensors, p: float) -> torch.Tensor:
    """(E,) r_p = ‖θ0 ⊙ m‖_p / ‖θ0‖_p of each member (init and masks: name → (E, ...)); the scale of the
    norm-matched dense control."""
    members = next(iter(init.values())).shape[0]
    return torch.tensor(
        [
            norm_ratio({k: v[e] for k, v in init.items()}, {k: v[e] for k, v in masks.items()}, p)
            for e in range(members)
        ]
    )

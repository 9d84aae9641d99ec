"""Stacked members: training E networks as one ensemble equals training them one by one; control masks exact."""

from __future__ import annotations

import pytest
import torch

from sparsenets import data
from sparsenets.errors import SparsenetsError
from sparsenets.masks import attach_masks, get_masks
from sparsenets.models.grokking import GrokMLP
from sparsenets.tickets import (
    control_masks,
    magnitude_scores,
    member_norm_ratios,
    norm_ratio,
    prune_by_scores,
    prune_members,
    repeat_members,
    seeded_ensemble,
    snapshot,
    stack_controls,
    train_members,
)


def _modular(p: int, seed: int, frac: float = 0.5) -> tuple[tuple, tuple]:
    """(train, test) of a+b mod p over pairs a ≤ b."""
    return tuple(  # type: ignore[return-value]
        tuple(data.load("modular", split=s, p=p, op="add", train_frac=frac, seed=seed, pairs="le"))
        for s in ("train", "test")
    )


def test_stacked_training_equals_separate_training() -> None:
    train, test = _modular(11, 0)
    seeds = [3, 4]
    ens = seeded_ensemble(lambda: GrokMLP(p=11, d_emb=16, hidden=8), seeds)
    masks = prune_members(magnitude_scores(snapshot(ens)), 0.5)
    attach_masks(ens, masks)
    names = list(masks)
    hist, _ = train_members(ens, train, test, 30, names=names, run_dir=None, eval_every=10)
    for e, s in enumerate(seeds):
        torch.manual_seed(s)
        single = GrokMLP(p=11, d_emb=16, hidden=8)
        attach_masks(single, {n: m[e] for n, m in masks.items()})
        ens1 = seeded_ensemble(lambda m=single: m, [0])
        attach_masks(ens1, {n: m[e : e + 1] for n, m in masks.items()})
        h1, _ = train_members(ens1, train, test, 30, names=names, run_dir=None, eval_every=10)
        for n, p in ens.named_parameters():
            assert torch.allclose(p[e], dict(ens1.named_parameters())[n][0], atol=1e-6)
            assert int((p[e][~masks[n][e]] != 0).sum()) == 0
        assert [r["test_accuracy"] for r in h1[0]] == [r["test_accuracy"] for r in hist[e]]


def test_control_masks_exact_counts_and_match_single_pruning() -> None:
    ens = seeded_ensemble(lambda: GrokMLP(p=13, d_emb=10, hidden=6), [0, 1])
    m = control_masks("random", ens, ["W_emb", "W_in"], 0.4, generator=torch.Generator().manual_seed(0))
    for e in range(2):
        assert sum(int(v[e].sum()) for v in m.values()) == round(0.4 * (10 * 13 + 6 * 10))
    single = prune_by_scores(magnitude_scores({k: v[1] for k, v in snapshot(ens).items()}), 0.4)
    stacked = control_masks("magnitude", ens, None, 0.4, trained=snapshot(ens))
    assert all(torch.equal(stacked[k][1], single[k]) for k in single)
    (x, y), _ = _modular(13, 0)
    assert bool((x[:, 0] <= x[:, 1]).all()) and bool((x.sum(1) % 13 == y).all())
    for kind in ("snip", "grasp"):
        pai = control_masks(kind, ens, ["W_emb", "W_in"], 0.4, batch=(x, y))
        assert all(int(sum(int(v[e].sum()) for v in pai.values())) == 76 for e in range(2))
    with pytest.raises(SparsenetsError, match="unknown mask kind"):
        control_masks("lottery", ens, None, 0.4)
    with pytest.raises(SparsenetsError, match="batch"):
        control_masks("snip", ens, ["W_in"], 0.4)


def test_stack_controls_blocks_are_theta0_under_each_mask_and_scaled() -> None:
    ens = seeded_ensemble(lambda: GrokMLP(p=7, d_emb=6, hidden=4), [0, 1])
    init = snapshot(ens)
    ticket = prune_members(magnitude_scores(init), 0.5)
    dense = {n: torch.ones_like(v, dtype=torch.bool) for n, v in init.items()}
    ratio = member_norm_ratios(init, ticket, 2.0)
    assert float(ratio[1]) == pytest.approx(norm_ratio({k: v[1] for k, v in init.items()},
                                                       {k: v[1] for k, v in ticket.items()}, 2.0))  # fmt: skip
    scale = torch.cat([torch.ones(2), ratio])
    model = stack_controls(
        lambda e: GrokMLP(p=7, d_emb=6, hidden=4, ensemble=e), init, [ticket, dense], scale
    )
    params = dict(model.named_parameters())
    for n, v in init.items():
        assert torch.equal(params[n][:2], v * ticket[n])  # block 0: the ticket from θ0
        assert torch.allclose(params[n][2:], v * ratio.view(-1, *[1] * (v.dim() - 1)))  # block 1: scaled θ0
        assert torch.equal(get_masks(model)[n], torch.cat([ticket[n], dense[n]]))
    t = torch.arange(6).view(2, 3)
    assert torch.equal(repeat_members(t, 3), torch.cat([t, t, t]))  # control-major blocks

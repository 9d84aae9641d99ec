"""Group layouts: coupled slices from the dependency graph, single-layer kinds, routing, the prox vocabulary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout, Member, coupled_layouts
from sparsenets.models.cnn import LeNet5
from tests.core.structured_helpers import TinyResNet


def test_coupled_lenet_groups_match_manual_slices() -> None:
    torch.manual_seed(0)
    model = LeNet5(width=0.5)
    layouts = coupled_layouts(model, torch.randn(1, 1, 28, 28))
    assert [lay.name for lay in layouts] == ["0", "3", "7"]
    conv2, fc1 = model[3], model[7]
    lay = layouts[1]
    c2 = conv2.out_channels
    manual = (
        conv2.weight.reshape(c2, -1).square().sum(1)
        + conv2.bias.square()
        + fc1.weight.reshape(fc1.out_features, c2, 16).square().sum((0, 2))
    )
    torch.testing.assert_close(lay.sq_norms(), manual.double().detach(), rtol=1e-6, atol=0)
    c = torch.zeros(c2)
    c[3] = 2.0
    before = fc1.weight.detach().clone()
    lay.scale_(c)
    assert torch.count_nonzero(conv2.weight[torch.arange(c2) != 3]) == 0
    torch.testing.assert_close(fc1.weight[:, 48:64], 2 * before[:, 48:64])
    assert torch.count_nonzero(fc1.weight[:, :48]) == 0


@pytest.mark.parametrize("kind", ["element", "filter", "channel", "shape", "layer"])
def test_single_layer_kinds(kind: str) -> None:
    conv = nn.Conv2d(3, 4, 3)
    model = nn.Sequential(conv)
    lay = GroupLayout.of_layer(model, "0", kind)
    w = conv.weight.detach().double()
    expected = {
        "element": w.reshape(-1).square(),
        "filter": w.reshape(4, -1).square().sum(1) + conv.bias.detach().double().square(),
        "channel": w.square().sum((0, 2, 3)),
        "shape": w.reshape(4, -1).square().sum(0),
        "layer": w.square().sum().reshape(1),
    }[kind]
    torch.testing.assert_close(lay.sq_norms(), expected)
    lay.scale_(torch.zeros(lay.m))
    assert torch.count_nonzero(conv.weight) == 0


def test_residual_channels_are_tied_across_the_add() -> None:
    model = TinyResNet()
    layouts = coupled_layouts(model, torch.randn(1, 1, 8, 8))
    tied = [lay for lay in layouts if {"stem.0.weight", "branch.2.weight"} <= {mb.name for mb in lay.members}]
    assert len(tied) == 1 and tied[0].m == 8
    names = {mb.name for mb in tied[0].members}
    assert {"stem.1.weight", "stem.1.bias", "branch.0.weight", "head.2.weight"} <= names


def test_masks_and_sizes_follow_the_groups() -> None:
    model = LeNet5(width=0.5)
    lay = coupled_layouts(model, torch.randn(1, 1, 28, 28))[1]  # conv2 filters + bias + fc1 input columns
    keep = torch.zeros(lay.m, dtype=torch.bool)
    keep[[0, 5]] = True
    masks = lay.masks(keep)
    assert masks["3.weight"].shape == model[3].weight.shape
    assert masks["3.weight"][[0, 5]].all() and not masks["3.weight"][1].any()
    assert masks["7.weight"][:, :16].all() and not masks["7.weight"][:, 16:80].any()
    per_group = 10 * 25 + 1 + model[7].out_features * 16  # filter + bias + 16 fc1 columns
    assert lay.sizes().tolist() == [float(per_group)] * lay.m


@pytest.mark.parametrize("seed", range(4))
def test_routed_ids_match_a_loop_over_positions(seed: int) -> None:
    """Permuted, shared and missing (-1) group ids: norms, scaling, masks and sizes equal a per-position loop."""
    g = torch.Generator().manual_seed(seed)
    m = 5
    w = nn.Parameter(torch.randn(7, 3, generator=g))
    b = nn.Parameter(torch.randn(4, generator=g))
    ids_w = torch.randint(-1, m, (7,), generator=g)
    ids_b = torch.randperm(m, generator=g)[:4]
    lay = GroupLayout([Member("w", w, (7, 3), 0, ids_w), Member("b", b, (4,), 0, ids_b)], m, "t")
    sq = torch.zeros(m, dtype=torch.float64)
    for x, ids in ((w.detach().double().square().sum(1), ids_w), (b.detach().double().square(), ids_b)):
        for i, j in enumerate(ids.tolist()):
            if j >= 0:
                sq[j] += x[i]
    torch.testing.assert_close(lay.sq_norms(), sq, rtol=1e-12, atol=0)
    keep = torch.rand(m, generator=g) > 0.5
    masks = lay.masks(keep)
    for i, j in enumerate(ids_w.tolist()):
        assert bool(masks["w"][i].all()) == (j < 0 or bool(keep[j]))
    c = torch.rand(m, generator=g, dtype=torch.float64)
    w0, b0 = w.detach().clone(), b.detach().clone()
    lay.scale_(c)
    for i, j in enumerate(ids_w.tolist()):
        torch.testing.assert_close(w[i], w0[i] * (1.0 if j < 0 else float(c[j])))
    torch.testing.assert_close(b.detach(), b0 * c[ids_b].float())
    sizes = torch.zeros(m, dtype=torch.float64)
    for j in ids_w.tolist():
        if j >= 0:
            sizes[j] += 3
    sizes[ids_b] += 1
    assert torch.equal(lay.sizes(), sizes)


def test_prox_operators_speak_group_layouts() -> None:
    """One vocabulary: a one-tensor GroupLayout gives the prox the same groups as row or id layouts, and a
    layout over several tensors is refused with a pointer to norms()/scale_()."""
    from sparsenets.prox import group_lasso_prox, hard_topk_prox, wgsef_prox

    torch.manual_seed(0)
    w = torch.randn(6, 4, dtype=torch.float64)
    rows = GroupLayout.of_tensor("w", w)
    assert torch.equal(wgsef_prox(w, 2, 0.3, groups=rows), wgsef_prox(w, 2, 0.3))
    assert torch.equal(hard_topk_prox(w, 2, groups=rows), hard_topk_prox(w, 2))
    conv = nn.Conv2d(3, 5, 3).double()
    channels = GroupLayout.of_layer(conv, "", "channel")
    ids = torch.arange(3).view(1, 3, 1, 1).expand(5, 3, 3, 3).contiguous()
    x = conv.weight.detach().clone()
    assert torch.equal(wgsef_prox(x, 1, 0.2, groups=channels), wgsef_prox(x, 1, 0.2, groups=ids))
    assert torch.equal(group_lasso_prox(x, 0.2, groups=channels), group_lasso_prox(x, 0.2, groups=ids))
    coupled = coupled_layouts(LeNet5(width=0.5), torch.randn(1, 1, 28, 28))[0]
    with pytest.raises(SparsenetsError, match="over one tensor"):
        wgsef_prox(coupled.members[0].param.detach(), 2, 0.1, groups=coupled)

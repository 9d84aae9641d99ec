"""Masks: buffers, holding under AdamW with weight decay and momentum, save/load, sparsity report."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.masks import (
    HoldMasks,
    attach_masks,
    density,
    detach_masks,
    get_masks,
    load_masks,
    report_markdown,
    save_masks,
    sparsity_report,
)
from sparsenets.train import TensorBatches, Trainer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def _half(model: nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {n: torch.rand(p.shape, generator=g) > 0.5 for n, p in model.named_parameters() if p.dim() == 2}


def test_buffers_in_state_dict_and_replaced_in_place() -> None:
    model, masks = _net(), None
    masks = _half(model)
    attach_masks(model, masks)
    sd = model.state_dict()
    assert set(get_masks(model)) == {"0.weight", "2.weight"}
    assert sd["0.weight_mask"].dtype == torch.bool and torch.equal(sd["0.weight_mask"], masks["0.weight"])
    assert torch.all(model[0].weight[~masks["0.weight"]] == 0)
    buf = model[0].weight_mask
    attach_masks(model, {"0.weight": torch.ones(16, 6, dtype=torch.bool)})
    assert model[0].weight_mask is buf and bool(buf.all())  # same buffer object: DDP keeps broadcasting it
    detach_masks(model)
    assert get_masks(model) == {}


def test_bad_masks_are_rejected() -> None:
    model = _net()
    with pytest.raises(SparsenetsError, match="does not have"):
        attach_masks(model, {"9.weight": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(SparsenetsError, match="shape"):
        attach_masks(model, {"0.weight": torch.ones(2, 2, dtype=torch.bool)})


def test_pruned_weights_exactly_zero_after_1000_adamw_steps() -> None:
    """AdamW with decoupled weight decay and momentum; the mask is attached mid-training so momentum is stale."""
    model = _net()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(256, 6, generator=g), torch.randint(0, 3, (256,), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.5, betas=(0.9, 0.98))
    for _ in range(20):  # build up momentum first
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    masks = _half(model)
    attach_masks(model, masks)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(
        model,
        opt,
        TensorBatches(x, y, batch_size=64, seed=0),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        1000,
        callbacks=[HoldMasks()],
        progress=False,
    )
    trainer.fit()
    params = dict(model.named_parameters())
    for n, m in masks.items():
        assert int((params[n][~m] != 0).sum()) == 0
        assert bool((params[n][m] != before[n][m]).any())  # survivors did train
    # the masks hold without the callback too (their hooks), and once detached the same optimizer revives pruned
    # weights (the test can fail)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert int((params["0.weight"][~masks["0.weight"]] != 0).sum()) == 0
    detach_masks(model)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert int((params["0.weight"][~masks["0.weight"]] != 0).sum()) > 0


def test_save_load_roundtrip_and_report(tmp_path) -> None:
    masks = _half(_net())
    path = save_masks(tmp_path / "ticket", masks, meta={"rate": 0.5, "layout": "element"})
    assert path.name == "ticket.safetensors" and (tmp_path / "ticket.json").exists()
    loaded, meta = load_masks(tmp_path / "ticket")
    assert meta == {"rate": 0.5, "layout": "element"}
    assert all(torch.equal(loaded[k], masks[k]) for k in masks)
    rep = sparsity_report(masks)
    kept = sum(int(m.sum()) for m in masks.values())
    assert rep["kept"] == kept and rep["total"] == 16 * 6 + 3 * 16
    assert rep["density"] == pytest.approx(density(masks))
    assert rep["layers"]["2.weight"]["kept"] == int(masks["2.weight"].sum())
    assert "| **all** |" in report_markdown(masks)
    with pytest.raises(SparsenetsError, match="no mask file"):
        load_masks(tmp_path / "missing")

"""LoRA, ReLoRA* and GaLore baselines, and the Lorentz (hyperbolic) layers SST is placed into."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.models.char_transformer import CharTransformer
from sparsenets.models.lorentz import (
    LorentzClassifier,
    LorentzGCN,
    LorentzLinear,
    expmap0,
    logmap0,
    lorentz_inner,
)
from sparsenets.spectral import (
    GaLoreAdamW,
    LoRAConfig,
    LoRALinear,
    ReLoRASchedule,
    SSTConfig,
    SSTSchedule,
    jagged_lr_lambda,
    lora_convert,
    lora_merge,
    optimizer_state_numel,
    sst_convert,
    sst_merge,
)
from sparsenets.train import Trainer
from tests.spectral.spectral_helpers import next_token_loss, token_batches

torch.set_num_threads(1)


def test_lora_starts_at_W0_and_merges_exactly() -> None:
    torch.manual_seed(0)
    model = CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8)
    x = torch.randint(0, 11, (2, 8))
    before = model(x).detach()
    lora_convert(model, LoRAConfig(rank=2))
    assert (model(x) - before).abs().max() < 1e-6
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, LoRALinear):
                mod.B.normal_()
    adapted = model(x).detach()
    lora_merge(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert (model(x) - adapted).abs().max() < 1e-5
    with pytest.raises(SparsenetsError, match="rank 20 is invalid"):
        lora_convert(
            CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8), LoRAConfig(rank=20)
        )


class GradAProbe(ReLoRASchedule):
    """Records ‖∂L/∂A‖ of every step; the step right after a merge must see exactly zero (B = 0)."""

    def __init__(self, period: int) -> None:
        super().__init__(period)
        self.norms: list[float] = []

    def after_backward(self, state) -> None:  # type: ignore[no-untyped-def]
        grads = [m.A.grad for m in state.module.modules() if isinstance(m, LoRALinear)]
        self.norms.append(float(torch.stack([g.norm() for g in grads]).norm()))


def test_relora_merges_reset_optimizer_and_zero_A_gradient() -> None:
    torch.manual_seed(0)
    model = lora_convert(
        CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8), LoRAConfig(rank=2)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    probe = GradAProbe(period=4)
    w0 = model.blocks[0].fc1.W0.clone()
    Trainer(
        model, opt, token_batches(), next_token_loss, 10, callbacks=[probe], progress=False, device="cpu"
    ).fit()
    assert probe.merges == 2
    assert not torch.equal(model.blocks[0].fc1.W0, w0)  # the adapter was merged in
    assert [i for i, n in enumerate(probe.norms) if n == 0.0] == [0, 4, 8]  # steps right after start/merges
    assert all(n > 0 for i, n in enumerate(probe.norms) if i not in (0, 4, 8))


def test_galore_update_has_rank_r_and_small_state() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(12, 8, bias=False)
    opt = GaLoreAdamW([{"params": [lin.weight], "galore": True}], lr=1e-2, rank=3, update_proj_gap=10)
    w = lin.weight.detach().clone()
    F.mse_loss(lin(torch.randn(16, 12)), torch.randn(16, 8)).backward()
    opt.step()
    delta = lin.weight.detach() - w
    sv = torch.linalg.svdvals(delta)
    assert sv[2] > 1e-6 and sv[3] < 1e-4 * sv[0]  # the update lives in a rank-3 subspace
    assert optimizer_state_numel(opt) == 2 * 3 * 12 + 8 * 3  # moments (r, n) + projector (m, r)


def test_jagged_lr_restarts() -> None:
    f = jagged_lr_lambda(100, warmup=5, restart_period=20, restart_warmup=4)
    assert f(0) == pytest.approx(0.2) and f(5) == pytest.approx(1.0, abs=1e-3)
    assert f(20) == pytest.approx(0.25 * f(19), rel=0.02)
    assert f(23) == pytest.approx(jagged_lr_lambda(100, warmup=5)(23))


def test_lorentz_layers_stay_on_the_hyperboloid_and_sst_fits_inside() -> None:
    torch.manual_seed(0)
    u = torch.randn(5, 4)
    x = expmap0(u)
    assert torch.allclose(lorentz_inner(x, x), -torch.ones(5), atol=1e-4)
    assert torch.allclose(logmap0(x), u, atol=1e-4)
    layer = LorentzLinear(5, 7)
    y = layer(x)
    assert torch.allclose(lorentz_inner(y, y), -torch.ones(5), atol=1e-3)
    gcn = LorentzGCN(in_features=6, dim=8, layers=2)
    adj = torch.eye(10) * 0.5 + 0.05
    feats = torch.randn(10, 6)
    before = gcn(feats, adj).detach()
    sst_convert(gcn, SSTConfig(rank=2, targets=("linear",)))
    after = gcn(feats, adj)
    assert (after - before).abs().max() < 1e-4
    assert torch.allclose(lorentz_inner(after, after), -torch.ones(10), atol=1e-3)
    logits = LorentzClassifier(8, 3)(after)
    assert logits.shape == (10, 3)
    logits.sum().backward()
    assert all(p.grad is not None for n, p in gcn.named_parameters() if n.endswith(".s"))


def test_sst_trains_a_lorentz_gcn_end_to_end() -> None:
    torch.manual_seed(0)
    n = 24
    labels = torch.arange(n) % 2
    adj = (labels[:, None] == labels[None, :]).float() + torch.eye(n)
    adj = adj / adj.sum(1, keepdim=True)
    feats = torch.randn(n, 6)
    gcn, head = LorentzGCN(6, dim=8, layers=2), LorentzClassifier(8, 2)
    cfg = SSTConfig(rank=2, targets=("linear",), period=5, warmup=1)
    model = nn.ModuleDict({"gcn": sst_convert(gcn, cfg), "head": head})
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)

    def loss_fn(m: nn.Module, _: object) -> torch.Tensor:
        return F.cross_entropy(m["head"](m["gcn"](feats, adj)), labels)

    Trainer(
        model, opt, lambda step: (), loss_fn, 40, callbacks=[SSTSchedule(cfg)], progress=False, device="cpu"
    ).fit()
    sst_merge(model)
    acc = float((model["head"](model["gcn"](feats, adj)).argmax(-1) == labels).float().mean())
    assert acc == 1.0

"""Sanity tests of Sparse Spectral Training (the checklist of specs/sst.md)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.models.char_transformer import CharTransformer
from sparsenets.spectral import (
    SSTConfig,
    SSTLinear,
    SSTSchedule,
    optimizer_state_numel,
    sample_indices,
    sampling_probabilities,
    sst_convert,
    sst_layers,
    sst_merge,
    sst_state_formula,
)
from sparsenets.train import SampledBatches, Trainer

torch.set_num_threads(1)


def tiny_lm(seed: int = 0) -> CharTransformer:
    torch.manual_seed(seed)
    return CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8)


def lm_batches(seed: int = 0) -> SampledBatches:
    def sample(g: torch.Generator, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 11, (b, 9), generator=g)
        x[:, 1::2] = (x[:, 0::2][:, : x[:, 1::2].shape[1]] + 1) % 11  # learnable structure
        return x[:, :-1], x[:, 1:]

    return SampledBatches(sample, batch_size=8, seed=seed)


def lm_loss(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(m(x).flatten(0, 1), y.flatten())


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 24), n=st.integers(1, 24), data=st.data())
def test_layer_init_equals_dense(m: int, n: int, data: st.DataObject) -> None:
    r = data.draw(st.integers(1, min(m, n)))
    torch.manual_seed(m * 31 + n)
    dense = nn.Linear(n, m)
    sst = SSTLinear(n, m, r, weight=dense.weight.detach(), bias_init=dense.bias.detach())
    x = torch.randn(5, n)
    assert torch.allclose(sst(x), dense(x), atol=1e-5, rtol=0)


def test_convert_leaves_model_outputs_unchanged() -> None:
    model = tiny_lm()
    x = torch.randint(0, 11, (3, 8))
    before = model(x).detach()
    sst_convert(model, SSTConfig(rank=2))
    assert len(sst_layers(model)) == 6
    assert (model(x) - before).abs().max() < 1e-5


def test_resvd_keeps_function_and_restores_orthonormality() -> None:
    torch.manual_seed(1)
    layer = SSTLinear(12, 9, 3)
    with torch.no_grad():  # drift the active columns and s as training would
        layer.U_act.add_(0.3 * torch.randn_like(layer.U_act))
        layer.V_act.add_(0.3 * torch.randn_like(layer.V_act))
        layer.s.mul_(torch.rand_like(layer.s) + 0.5)
    u, v = layer.full_factors()
    assert (u.T @ u - torch.eye(9)).abs().max() > 1e-2  # not orthonormal before
    w_before = layer.weight.detach().clone()
    layer.resvd()
    w_after = layer.weight.detach()
    assert ((w_after - w_before).norm() / w_before.norm()) <= 1e-5
    u, v = layer.full_factors()
    assert (u.T @ u - torch.eye(9)).abs().max() < 1e-5
    assert (v.T @ v - torch.eye(9)).abs().max() < 1e-5
    s = layer.s.detach()
    assert (s >= 0).all() and (s[:-1] >= s[1:]).all()


def test_sigma_gradient_is_diag_UT_G_V_and_active_gradients_are_enhanced() -> None:
    torch.manual_seed(2)
    layer = SSTLinear(10, 7, 3)
    layer.set_active(torch.tensor([5, 1, 3]))
    x, target = torch.randn(6, 10), torch.randn(6, 7)
    F.mse_loss(layer(x), target).backward()
    w = layer.weight.detach().clone().requires_grad_(True)  # dense twin
    F.mse_loss(F.linear(x, w, layer.bias.detach()), target).backward()
    g = w.grad
    u, v = layer.full_factors()
    assert torch.allclose(layer.s.grad, torch.diagonal(u.T @ g @ v), atol=1e-6)
    # enhanced gradient: ∂L/∂u_i / σ_i = G v_i (and Gᵀ u_i for v_i)
    assert torch.allclose(layer.U_act.grad, g @ layer.V_act.detach(), atol=1e-6)
    assert torch.allclose(layer.V_act.grad, g.T @ layer.U_act.detach(), atol=1e-6)
    # without enhancement: the true gradients σ_i G v_i
    layer.enhanced_grad = False
    layer.zero_grad()
    F.mse_loss(layer(x), target).backward()
    s_act = layer.s.detach()[layer.active]
    assert torch.allclose(layer.U_act.grad, (g @ layer.V_act.detach()) * s_act, atol=1e-6)


def _train(model: nn.Module, cfg: SSTConfig, steps: int, callbacks: list, lr: float = 1e-2) -> Trainer:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    trainer = Trainer(
        model, opt, lm_batches(), lm_loss, steps, callbacks=callbacks, progress=False, device="cpu"
    )
    trainer.fit()
    return trainer


class Recorder(SSTSchedule):
    """SSTSchedule that snapshots the layers after every step and reads the optimizer right after resampling."""

    def __init__(self, cfg: SSTConfig) -> None:
        super().__init__(cfg, seed=3)
        self.snaps: list[dict] = []
        self.swapped_state: list[int] = []

    def after_step(self, state) -> None:  # type: ignore[no-untyped-def]
        super().after_step(state)
        layer = sst_layers(state.module)[0]
        opt = state.trainer.optimizer
        if state.step % self.config.period == 0:
            self.swapped_state.append(sum(1 for p in (layer.U_act, layer.V_act) if opt.state.get(p)))
        self.snaps.append(
            {
                "step": state.step,
                "U": layer.U.clone(),
                "V": layer.V.clone(),
                "s": layer.s.detach().clone(),
                "active": layer.active.clone(),
                "u_norm": layer.U_act.detach().norm(dim=0),
                "v_norm": layer.V_act.detach().norm(dim=0),
                "s_min": min(float(lay.s.detach().min()) for lay in sst_layers(state.module)),
            }
        )


def test_schedule_freezes_unsampled_columns_and_projects_every_step() -> None:
    model = tiny_lm()
    cfg = SSTConfig(rank=2, period=5, iterations_per_round=2)
    rec = Recorder(cfg)
    _train(sst_convert(model, cfg), cfg, 20, [rec])
    snaps = rec.snaps
    for a, b in itertools.pairwise(snaps):
        if b["step"] % cfg.period == 1 and a["step"] % cfg.period == 0:
            continue  # a resample (and maybe re-SVD) happened between a and b
        if b["step"] % cfg.period == 0:
            continue  # b was taken after its own resample
        assert torch.equal(a["active"], b["active"])
        frozen = torch.ones(a["U"].shape[1], dtype=torch.bool)
        frozen[a["active"]] = False
        assert torch.equal(a["U"][:, frozen], b["U"][:, frozen])  # bit-identical
        assert torch.equal(a["V"][:, frozen], b["V"][:, frozen])
        stuck_at_zero = (a["s"] == 0) & (b["s"] == 0)  # clamped by the projection
        assert ((a["s"] != b["s"]) | stuck_at_zero).all()  # every singular value trains
    for snap in snaps:
        assert torch.allclose(snap["u_norm"], torch.ones(2), atol=1e-5)
        assert torch.allclose(snap["v_norm"], torch.ones(2), atol=1e-5)
        assert snap["s_min"] >= 0
    assert rec.resamples == 1 + 20 // 5 and rec.resvds == 2
    assert rec.swapped_state == [0] * 4  # the swapped slots start with no (= zero) moments


def test_optimizer_state_matches_formula() -> None:
    model = tiny_lm()
    cfg = SSTConfig(rank=3, period=4)
    sst_convert(model, cfg)
    trainer = _train(model, cfg, 3, [SSTSchedule(cfg)])
    numel = optimizer_state_numel(trainer.optimizer)
    expected_sst = 2 * sum(
        lay.rank * (lay.in_features + lay.out_features) + lay.k for lay in sst_layers(model)
    )
    others = sum(
        p.numel() for n, p in model.named_parameters() if not any(t in n for t in ("U_act", "V_act", ".s"))
    )
    assert numel == sst_state_formula(model) == expected_sst + 2 * others


def test_merge_reproduces_validation_loss() -> None:
    model = tiny_lm()
    cfg = SSTConfig(rank=2, period=4)
    sst_convert(model, cfg)
    _train(model, cfg, 12, [SSTSchedule(cfg)])
    model.eval()
    val = lm_batches(seed=99)(0)
    with torch.no_grad():
        before = float(lm_loss(model, val))
        sst_merge(model)
        after = float(lm_loss(model, val))
    assert not sst_layers(model)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 6
    assert abs(before - after) < 1e-5


def test_sampler_first_draw_frequencies_match_target() -> None:
    s = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.0, 0.0])
    p = sampling_probabilities(s, "mixture")
    assert math.isclose(float(p.sum()), 1.0) and (p > 0).all()
    g = torch.Generator().manual_seed(0)
    n = 20000
    first = torch.zeros(6)
    inclusion = torch.zeros(6)
    for _ in range(n):
        idx = sample_indices(s, 3, g, "mixture")
        assert idx.unique().numel() == 3
        first[idx[0]] += 1
        inclusion[idx] += 1
    chi2 = float((((first - n * p) ** 2) / (n * p)).sum())
    assert chi2 < 20.5  # 99.9% quantile of chi-square with 5 dof
    assert (inclusion > 0).all()
    assert (inclusion[:-2][:-1] >= inclusion[:-2][1:]).all()  # monotone in p


def test_sampler_modes() -> None:
    s = torch.tensor([1.0, 4.0, 2.0, 3.0])
    g = torch.Generator().manual_seed(0)
    assert sample_indices(s, 2, g, "top").tolist() == [1, 3]
    assert torch.allclose(sampling_probabilities(s, "sigma"), s.double() / 10)
    with pytest.raises(ConfigError, match="sampling"):
        sampling_probabilities(s, "bogus")


def test_bad_input_errors() -> None:
    with pytest.raises(SparsenetsError, match=r"rank 0 is invalid.*\[1, 16\]"):
        sst_convert(tiny_lm(), SSTConfig(rank=0))
    with pytest.raises(SparsenetsError, match=r"rank 17 is invalid"):
        sst_convert(tiny_lm(), SSTConfig(rank=17))
    with pytest.raises(SparsenetsError, match=r"target 'qkv' matches no Linear"):
        sst_convert(tiny_lm(), SSTConfig(rank=2, targets=("q", "qkv")))
    with pytest.raises(SparsenetsError, match="period"):
        SSTConfig(rank=2, period=0)
    with pytest.raises(SparsenetsError, match="rank"):
        SSTLinear(4, 3, 4)

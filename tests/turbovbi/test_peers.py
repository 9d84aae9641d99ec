"""The Bayesian peers: Sparse VD's KL fit and log α pruning, BC-GHS's horseshoe updates and whole-neuron pruning."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F

from sparsenets.compact import compact
from sparsenets.errors import ConfigError
from sparsenets.train import TensorBatches, Trainer
from sparsenets.turbovbi import (
    BCGHS,
    SparseVD,
    VariationalCallback,
    bc_ghs_convert,
    bc_ghs_masks,
    layer_stats,
    log_alpha,
    merge_pruned,
    sparse_vd_convert,
    sparse_vd_kl,
    sparse_vd_masks,
)


@pytest.fixture(scope="module")
def digits_dense() -> tuple[dict, TensorBatches, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A dense MLP trained 20 epochs on sklearn digits (its state), the batches, one example, the test split."""
    torch.manual_seed(0)
    d = load_digits()
    x, y = torch.tensor(d.data, dtype=torch.float32) / 16, torch.tensor(d.target)
    batches = TensorBatches(x[:1400], y[:1400], batch_size=100, seed=0)
    model = _mlp()
    Trainer(
        model, torch.optim.Adam(model.parameters(), 1e-2), batches, _ce, 280, device="cpu", progress=False
    ).fit()
    return model.state_dict(), batches, x[:1], x[1400:], y[1400:]


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def _trained(state: dict) -> nn.Sequential:
    model = _mlp()
    model.load_state_dict(state)
    return model


def _ce(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(model(batch[0]), batch[1])


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == y).float().mean())


def test_sparse_vd_kl_fit_tracks_the_true_kl_up_to_its_constant() -> None:
    """Molchanov's fit vs −KL(α) = ½ln α − E ln|ε| + C, ε ~ N(1, α), by quadrature; the fit's error is < 0.01."""
    u = torch.linspace(-12, 12, 400001, dtype=torch.float64)
    density = torch.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    du = float(u[1] - u[0])

    def neg_kl_true(la: float) -> float:
        e_log = float((torch.log((1 + math.exp(la / 2) * u).abs() + 1e-300) * density).sum() * du)
        return 0.5 * la - e_log

    grid = [-4.0, -2.0, 0.0, 2.0, 4.0]
    fit = [-float(sparse_vd_kl(torch.tensor([la]))) for la in grid]
    true = [neg_kl_true(la) for la in grid]
    c = sum(f - t for f, t in zip(fit, true)) / len(grid)
    assert max(abs(f - t - c) for f, t in zip(fit, true)) < 0.01
    assert float(sparse_vd_kl(torch.tensor([10.0]))) == pytest.approx(0.0, abs=1e-4)  # KL → 0 as α → ∞


def test_sparse_vd_masks_are_log_alpha_above_three_and_training_prunes(digits_dense) -> None:
    model = sparse_vd_convert(nn.Sequential(nn.Linear(4, 2)))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].log_sigma2.copy_(torch.tensor([[2.0, 2.9, 3.1, 5.0], [-1.0, 3.0, 2.99, 4.0]]))
    assert torch.allclose(log_alpha(model[0]), model[0].log_sigma2, atol=1e-6)
    keep = sparse_vd_masks(model)["0.weight"]
    assert keep.tolist() == [[True, True, False, False], [True, True, True, False]]

    state, batches, _, xte, yte = digits_dense
    model = _trained(state)
    dense_acc = _accuracy(model, xte, yte)
    sparse_vd_convert(model)
    driver = SparseVD(model, n_train=1400, anneal_steps=100)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    Trainer(
        model, opt, batches, _ce, 280, callbacks=[VariationalCallback(driver)], device="cpu", progress=False
    ).fit()
    plain, _ = merge_pruned(model, sparse_vd_masks(model))
    assert layer_stats(plain)[-1]["compression"] > 4.0  # measured ≈ 10×
    assert _accuracy(plain, xte, yte) > dense_acc - 0.03


def test_bc_ghs_scale_updates_are_the_mean_field_fixed_point() -> None:
    model = bc_ghs_convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    assert not hasattr(model[2], "z_mu")  # the classifier stays deterministic
    driver = BCGHS(model, n_train=10, steps_per_epoch=1, tau0=0.5)
    with torch.no_grad():
        model[0].z_mu.copy_(torch.tensor([2.0, 1.0, 0.1, 0.0]))
    driver.update_scales()
    s, layer = driver.scales["0"], model[0]
    ez2 = (layer.z_mu**2 + layer.z_sigma2()).double().detach()
    # after the last sweep: ν and ξ are exact given λ², τ²; λ² was updated one sweep before τ²
    assert torch.allclose(s["inv_nu"], 1 / (1 + s["inv_lam2"]))
    assert s["inv_xi"] == pytest.approx(1 / (1 / 0.25 + s["inv_tau2"]))
    prior = layer.z_prior_var.double()
    assert torch.allclose(prior, 1 / (s["inv_lam2"] * s["inv_tau2"]), rtol=1e-5)
    assert (prior.diff() < 0).all()  # the heavy tail: the larger E[z²], the looser its prior
    assert float(ez2[0]) > float(ez2[3])
    with pytest.raises(ConfigError, match="tau0 must be finite and > 0"):
        BCGHS(model, n_train=10, steps_per_epoch=1, tau0=0.0)
    again = BCGHS(model, n_train=10, steps_per_epoch=1, tau0=0.5)
    again.load_state_dict(driver.state_dict())
    assert torch.allclose(again.scales["0"]["inv_lam2"], s["inv_lam2"])


def test_bc_ghs_removes_whole_neurons_and_compacts_exactly(digits_dense) -> None:
    state, batches, example, xte, yte = digits_dense
    model = _trained(state)
    dense_acc = _accuracy(model, xte, yte)
    bc_ghs_convert(model)
    driver = BCGHS(model, n_train=1400, steps_per_epoch=batches.steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    Trainer(
        model, opt, batches, _ce, 280, callbacks=[VariationalCallback(driver)], device="cpu", progress=False
    ).fit()
    masks = bc_ghs_masks(model)
    for m in masks.values():  # whole rows: a neuron is kept or dropped with all its incoming weights
        rows = m.reshape(m.shape[0], -1)
        assert (rows.all(1) | ~rows.any(1)).all()
    plain, masks = merge_pruned(model, masks, example)
    stats = layer_stats(plain)
    assert stats[0]["units_left"] < 64 and stats[1]["units_left"] < 32  # measured 48 and 24
    assert _accuracy(plain, xte, yte) > dense_acc - 0.03
    small = compact(plain, example)
    assert small[0].out_features == stats[0]["units_left"] and small[2].out_features == stats[1]["units_left"]
    assert torch.allclose(small(xte), plain(xte), atol=1e-5)

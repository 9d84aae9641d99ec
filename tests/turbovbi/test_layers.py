"""Bayesian layers: local reparameterisation against Monte-Carlo over weights, `.weight` in ordinary PyTorch code,
the KL against torch.distributions, conversion and its refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from sparsenets.errors import ConfigError
from sparsenets.masks import attach_masks
from sparsenets.turbovbi import BayesConv2d, BayesLinear, TurboVBIConfig, convert, to_plain
from sparsenets.turbovbi.peers import GroupScaledLinear


def _random_posterior(layer: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        layer.log_sigma2.copy_(torch.rand(layer.weight.shape, generator=g) * 2 - 3)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_local_reparameterisation_matches_monte_carlo_over_weights(kind: str) -> None:
    torch.manual_seed(0)
    k = 20000
    if kind == "linear":
        layer, x = BayesLinear(5, 3), torch.randn(2, 5)
    else:
        layer, x = BayesConv2d(2, 3, 3, padding=1), torch.randn(2, 2, 4, 4)
    _random_posterior(layer, 1)
    layer.train()
    with torch.no_grad():
        mean = layer._linear_op(x, layer.weight, layer.bias)
        var = layer._linear_op(x * x, layer.sigma2(), None)
        # LRT: each row of a batch draws its own noise, so k copies of x are k independent draws
        lrt = layer(x.repeat(k, *[1] * (x.dim() - 1))).reshape(k, *mean.shape)
        sd = layer.sigma2().sqrt()
        w = layer.weight + sd * torch.randn(k, *sd.shape)  # k weight draws, applied as one wide layer
        wide = layer._linear_op(x, w.reshape(-1, *sd.shape[1:]), layer.bias.repeat(k))
        mc = wide.reshape(x.shape[0], k, *mean.shape[1:]).transpose(0, 1)
    # sample mean/variance of 20000 draws: 5 standard errors (relative 5/sqrt(k/2) ≈ 5% for the variance)
    for samples in (lrt, mc):
        assert torch.allclose(samples.mean(0), mean, atol=float(5 * (var / k).sqrt().max()))
        assert torch.allclose(samples.var(0), var, rtol=0.05, atol=1e-6)


def test_group_scaled_layer_moments_match_the_product_of_gaussians() -> None:
    torch.manual_seed(0)
    layer = GroupScaledLinear(4, 3)
    _random_posterior(layer, 2)
    with torch.no_grad():
        layer.z_mu.copy_(torch.tensor([1.0, -0.5, 2.0]))
        layer.z_log_sigma2.copy_(torch.tensor([-1.0, -2.0, -0.5]))
        k = 200000
        z = layer.z_mu + layer.z_sigma2().sqrt() * torch.randn(k, 3)
        w = layer.weight + layer.sigma2().sqrt() * torch.randn(k, 3, 4)
        prod = z[:, :, None] * w
    assert torch.allclose(prod.mean(0), layer.mean_weight(), atol=0.03)
    assert torch.allclose(prod.var(0), layer.var_weight(), rtol=0.05, atol=1e-3)


def test_eval_uses_the_mean_and_weight_is_an_ordinary_parameter() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.randn(2, 1, 6, 6)
    before = model(x)
    names = [n for n, _ in model.named_parameters()]
    convert(model)
    assert isinstance(model[0], BayesConv2d) and isinstance(model[3], BayesLinear)
    assert isinstance(model[3], nn.Linear)  # code that checks layer types still sees a Linear
    model.eval()
    assert torch.allclose(model(x), before, atol=1e-6)  # μ = the converted weights
    assert [n for n in names if n not in dict(model.named_parameters())] == []
    w = model[3].weight
    assert isinstance(w, nn.Parameter) and w.shape == (3, 64)
    h = model[2](model[1](model[0](x)))
    assert torch.allclose(F.linear(h, w, model[3].bias), model(x), atol=1e-6)
    model.train()
    assert not torch.allclose(model(x), model(x))  # training samples pre-activations
    attach_masks(model, {"3.weight": torch.arange(192).reshape(3, 64) % 2 == 0})  # the masks vocabulary fits
    assert (model[3].weight[:, 1::2] == 0).all()
    plain = to_plain(model).eval()
    assert type(plain[0]) is nn.Conv2d and type(plain[3]) is nn.Linear
    assert (plain[3].weight[:, 1::2] == 0).all()


def test_kl_matches_the_closed_form_of_torch_distributions() -> None:
    layer = BayesLinear(6, 4)
    _random_posterior(layer, 3)
    with torch.no_grad():
        layer.prior_var.copy_(torch.rand(4, 6) + 0.1)
    q = Normal(layer.weight, layer.sigma2().sqrt())
    p = Normal(torch.zeros(4, 6), layer.prior_var.sqrt())
    assert torch.allclose(layer.kl(), kl_divergence(q, p).sum(), rtol=1e-5)


def test_conversion_refusals_are_one_clear_line() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, (3, 1)), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(ConfigError, match=r"is a BatchNorm2d: only nn\.Linear and nn\.Conv2d"):
        convert(model, targets=["1"])
    with pytest.raises(ConfigError, match="layer 'nope' is not in the model"):
        convert(model, targets=["nope"])
    with pytest.raises(ConfigError, match="square conv kernel"):
        convert(model, TurboVBIConfig(support="mrf2d"))
    convert(model, TurboVBIConfig(support="iid"))  # no support grid needed for i.i.d.
    with pytest.raises(ConfigError, match="already has Bayesian layers"):
        convert(model)
    with pytest.raises(ConfigError, match="wrap it"):
        convert(nn.Linear(3, 2))
    with pytest.raises(ConfigError, match=r"no nn\.Linear or nn\.Conv2d"):
        convert(nn.Sequential(nn.ReLU()))


def test_closed_form_kl_gradient_equals_autograd() -> None:
    torch.manual_seed(0)
    for layer in (BayesLinear(5, 4), GroupScaledLinear(5, 4)):
        _random_posterior(layer, 4)
        with torch.no_grad():
            layer.prior_var.copy_(torch.rand(4, 5) + 0.1)
            if isinstance(layer, GroupScaledLinear):
                layer.z_mu.copy_(torch.randn(4))
                layer.z_prior_var.copy_(torch.rand(4) + 0.2)
        (0.3 * layer.kl()).backward()
        auto = {n: p.grad.clone() for n, p in layer.named_parameters() if p.grad is not None}
        layer.zero_grad(set_to_none=True)
        layer.add_kl_grad_(0.3)
        closed = {n: p.grad for n, p in layer.named_parameters() if p.grad is not None}
        assert auto.keys() == closed.keys() and "log_sigma2" in closed
        for name in auto:
            assert torch.allclose(closed[name], auto[name], atol=1e-6), name

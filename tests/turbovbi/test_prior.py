"""Module A's closed-form steps: each is the exact maximiser of its part of the ELBO; messages and checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.turbovbi.prior import (
    GammaTables,
    NonFinitePosteriorError,
    check_finite,
    check_transition,
    expected_log_rho,
    expected_rho,
    extrinsic_logodds,
    gamma_log_density_mean,
    kl_weights,
    marginal_unary_logodds,
    rho_step,
    s_logodds,
    s_step,
)

positive = st.floats(0.05, 5.0)
prob = st.floats(0.02, 0.98)
D = torch.float64


def _rho_objective(a_t: float, b_t: float, m2: float, pi_t: float, t: GammaTables) -> float:
    """The q(ρ)-dependent part of the ELBO: E[ln N(w; 0, 1/ρ)] + E[ln p(ρ|s)] + H[Gamma(ã, b̃)]."""
    a, b = torch.tensor(a_t, dtype=D), torch.tensor(b_t, dtype=D)
    e_rho, e_log = expected_rho(a, b), expected_log_rho(a, b)
    log_w = 0.5 * e_log - 0.5 * e_rho * m2
    log_rho = pi_t * gamma_log_density_mean(t.a, t.b, e_rho, e_log) + (1 - pi_t) * gamma_log_density_mean(
        t.a_bar, t.b_bar, e_rho, e_log
    )
    entropy = a - torch.log(b) + torch.lgamma(a) + (1 - a) * torch.digamma(a)
    return float(log_w + log_rho + entropy)


@settings(max_examples=40, deadline=None)
@given(a=positive, b=positive, a_bar=positive, b_bar=positive, m2=st.floats(1e-3, 10.0), pi_t=prob)
def test_real_rho_step_maximises_the_elbo(a, b, a_bar, b_bar, m2, pi_t) -> None:
    t = GammaTables(a, b, a_bar, b_bar)
    a_t, b_t = rho_step(torch.tensor(m2, dtype=D), torch.tensor(pi_t, dtype=D), t)
    best = _rho_objective(float(a_t), float(b_t), m2, pi_t, t)
    for da, db in ((1.02, 1.0), (0.98, 1.0), (1.0, 1.02), (1.0, 0.98), (1.05, 1.05), (0.95, 0.95)):
        assert _rho_objective(float(a_t) * da, float(b_t) * db, m2, pi_t, t) < best


def test_rho_step_constants_real_and_demo() -> None:
    t = GammaTables(1.0, 2.0, 3.0, 0.5)
    m2, pi_t = torch.tensor([0.0, 4.0]), torch.tensor([1.0, 0.0])
    a_t, b_t = rho_step(m2, pi_t, t, "real")
    assert torch.allclose(a_t, torch.tensor([1.5, 3.5])) and torch.allclose(b_t, torch.tensor([2.0, 2.5]))
    a_t, b_t = rho_step(m2, pi_t, t, "demo")
    assert torch.allclose(a_t, torch.tensor([2.0, 4.0])) and torch.allclose(b_t, torch.tensor([2.0, 4.5]))
    with pytest.raises(ConfigError, match="constants"):
        rho_step(m2, pi_t, t, "complex")


@settings(max_examples=15, deadline=None)
@given(a_t=st.floats(0.3, 20.0), b_t=st.floats(0.05, 20.0))
def test_gamma_expectations_match_quadrature(a_t: float, b_t: float) -> None:
    dist = stats.gamma(a_t, scale=1 / b_t)
    e_rho = integrate.quad(lambda r: r * dist.pdf(r), 0, math.inf)[0]
    e_log = integrate.quad(lambda r: math.log(r) * dist.pdf(r), 0, math.inf, limit=200)[0]
    a, b = torch.tensor(a_t, dtype=D), torch.tensor(b_t, dtype=D)
    assert float(expected_rho(a, b)) == pytest.approx(e_rho, rel=1e-6)
    assert float(expected_log_rho(a, b)) == pytest.approx(e_log, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(a=positive, b=positive, a_bar=positive, b_bar=positive, a_t=st.floats(0.5, 8), b_t=positive, pi=prob)
def test_s_step_maximises_the_elbo(a, b, a_bar, b_bar, a_t, b_t, pi) -> None:
    t = GammaTables(a, b, a_bar, b_bar)
    at, bt = torch.tensor(a_t, dtype=D), torch.tensor(b_t, dtype=D)
    prior = torch.tensor(math.log(pi / (1 - pi)), dtype=D)
    e_rho, e_log = expected_rho(at, bt), expected_log_rho(at, bt)
    c1 = math.log(pi) + float(gamma_log_density_mean(a, b, e_rho, e_log))
    c0 = math.log(1 - pi) + float(gamma_log_density_mean(a_bar, b_bar, e_rho, e_log))

    def objective(logit: float) -> float:  # E[ln p(ρ|s) + ln p(s)] + H[q(s)] at q(s = 1) = sigmoid(logit)
        ell = torch.tensor(logit, dtype=D)
        q, log_q, log_1q = torch.sigmoid(ell), F.logsigmoid(ell), F.logsigmoid(-ell)
        return float(q * (c1 - log_q) + (1 - q) * (c0 - log_1q))

    best = float(s_logodds(at, bt, prior, t))
    assert all(objective(best + d) <= objective(best) + 1e-12 for d in (-0.05, 0.05, -0.5, 0.5))
    assert best == pytest.approx(c1 - c0, abs=1e-9)
    assert float(s_step(at, bt, prior, t)) == pytest.approx(1 / (1 + math.exp(-(c1 - c0))), rel=1e-12)


def test_s_step_switches_at_the_pitfall_threshold() -> None:
    """With a = ā the s-step picks inactive iff E[ρ] > ρ* = (a ln(b/b̄) + logit π)/(b − b̄)."""
    t, pi = GammaTables(1.0, 1.0, 1.0, 1e-4), 0.5
    rho_star = (t.a * math.log(t.b / t.b_bar) + 0.0) / (t.b - t.b_bar)
    assert rho_star == pytest.approx(9.2, abs=0.05)
    a_t = torch.tensor(3.0, dtype=D)
    prior = torch.tensor(math.log(pi / (1 - pi)), dtype=D)
    for factor, active in ((0.99, True), (1.01, False)):
        b_t = a_t / (factor * rho_star)  # E[ρ] = factor · ρ*
        assert (float(s_logodds(a_t, b_t, prior, t)) > 0) is active


@settings(max_examples=50, deadline=None)
@given(pi_t=prob, pi=prob)
def test_extrinsic_message_is_the_spec_formula(pi_t: float, pi: float) -> None:
    post, prior = torch.tensor(math.log(pi_t / (1 - pi_t))), torch.tensor(math.log(pi / (1 - pi)))
    expected = pi_t * (1 - pi) / (pi + (1 - 2 * pi) * pi_t)
    assert float(torch.sigmoid(extrinsic_logodds(post, prior))) == pytest.approx(expected, rel=1e-5)
    demo = pi_t * pi / (pi_t * pi + (1 - pi_t) * (1 - pi))
    assert float(torch.sigmoid(marginal_unary_logodds(post, prior))) == pytest.approx(demo, rel=1e-5)


def test_kl_weights_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu, sigma2 = torch.randn(5, 3, generator=g), torch.rand(5, 3, generator=g) + 0.1
    prior_var = torch.rand(5, 3, generator=g) + 0.05
    q = torch.distributions.Normal(mu, sigma2.sqrt())
    p = torch.distributions.Normal(torch.zeros_like(mu), prior_var.sqrt())
    assert torch.allclose(kl_weights(mu, sigma2, prior_var), torch.distributions.kl_divergence(q, p).sum())


def test_float32_in_float32_out() -> None:
    t = GammaTables(1.0, 1.0, 1.0, 1e-4)
    m2, pi_t = torch.rand(4), torch.full((4,), 0.1)
    a_t, b_t = rho_step(m2, pi_t, t)
    assert s_step(a_t, b_t, torch.zeros(4), t).dtype == torch.float32


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, "1"])
@pytest.mark.parametrize("field", ["a", "b", "a_bar", "b_bar"])
def test_bad_gamma_tables_get_one_clear_error(field: str, bad: object) -> None:
    values = {"a": 1.0, "b": 1.0, "a_bar": 1.0, "b_bar": 1e-4, field: bad}
    with pytest.raises(ConfigError, match=f"Gamma table {field}=.* must be a finite number > 0"):
        GammaTables(**values)


def test_scaled_multiplies_both_rates() -> None:
    t = GammaTables(1.0, 2.0, 3.0, 0.5).scaled(0.01)
    assert (t.a, t.b, t.a_bar, t.b_bar) == (1.0, 0.02, 3.0, 0.005)
    with pytest.raises(ConfigError):
        GammaTables(1.0, 2.0, 3.0, 0.5).scaled(0.0)


@pytest.mark.parametrize("p01, p10", [(0.0, 0.1), (1.0, 0.1), (0.1, -0.2), (0.1, 1.5), (math.nan, 0.1)])
def test_bad_transitions_get_one_clear_error(p01: float, p10: float) -> None:
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        check_transition(p01, p10)


def test_check_finite_names_the_bad_posterior() -> None:
    check_finite("q(w)", torch.zeros(3), torch.ones(2))
    for bad in (math.nan, math.inf):
        with pytest.raises(NonFinitePosteriorError, match="q\\(w\\) holds NaN/inf") as info:
            check_finite("q(w)", torch.zeros(3), torch.tensor([1.0, bad]))
        assert isinstance(info.value, SparsenetsError) and "\n" not in str(info.value)

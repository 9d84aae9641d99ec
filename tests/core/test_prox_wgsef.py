"""WGSEF prox: exactness against independent solvers, certificates, gap condition, properties, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from sparsenets.prox import (
    root_select,
    root_sweep_tensor,
    wgsef_multipliers,
    wgsef_prox,
    wgsef_value,
)
from tests.core.prox_reference import (
    conjugate,
    gap_condition,
    group_sq_norms,
    prox_by_enumeration,
    prox_objective,
    sef_closed_form,
    wgsef_value_ref,
)


def _instance(rng: np.random.Generator, m: int, zero_groups: int = 0, ties: bool = False):
    """A random grouped vector (ids layout) with weights, some all-zero groups and optionally tied norms."""
    sizes = rng.integers(1, 4, size=m)
    ids = np.repeat(np.arange(m), sizes)
    rng.shuffle(ids)
    x = rng.normal(size=ids.size) * rng.choice([0.1, 1.0, 10.0])
    for j in rng.choice(m, size=zero_groups, replace=False):
        x[ids == j] = 0.0
    if ties:  # two groups with the same norm and the same weight
        j0, j1 = rng.choice(m, size=2, replace=False)
        n0, n1 = np.linalg.norm(x[ids == j0]), np.linalg.norm(x[ids == j1])
        if n1 > 0:
            x[ids == j1] *= n0 / n1
    w = rng.uniform(0.2, 3.0, size=m)
    if ties:
        w[:] = 1.0
    return x, ids, w


def _torch_prox(x, ids, k, tau, w):
    z = wgsef_prox(torch.tensor(x), k, tau, groups=torch.tensor(ids), weights=torch.tensor(w))
    return z.numpy()


@pytest.mark.parametrize("seed", range(40))
def test_prox_matches_enumeration_to_1e9(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 8))
    x, ids, w = _instance(rng, m, zero_groups=int(rng.integers(0, 2)), ties=seed % 3 == 0)
    k = int(rng.integers(1, m + 1))
    tau = float(10 ** rng.uniform(-2, 2))
    z = _torch_prox(x, ids, k, tau, w)
    best, z_ref = prox_by_enumeration(x, ids, m, k, tau, w)
    ours = prox_objective(z, x, ids, m, k, tau, w)
    assert abs(ours - best) <= 1e-9 * max(abs(best), 1e-300)
    np.testing.assert_allclose(z, z_ref, rtol=1e-7, atol=1e-9 * np.abs(x).max())


@pytest.mark.parametrize("seed", range(6))
def test_prox_not_beaten_by_slsqp_or_perturbations(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    m, k = 14, int(rng.integers(2, 7))
    x, ids, w = _instance(rng, m, zero_groups=2)
    tau = float(10 ** rng.uniform(-1, 1))
    z = _torch_prox(x, ids, k, tau, w)
    ours = prox_objective(z, x, ids, m, k, tau, w)
    c, t = group_sq_norms(x, ids, m), tau * w
    res = minimize(
        lambda u: 0.5 * np.sum(c * t / (u + t)),
        np.full(m, k / m),
        jac=lambda u: -0.5 * c * t / (u + t) ** 2,
        bounds=[(0, 1)] * m,
        constraints=[{"type": "ineq", "fun": lambda u: k - u.sum(), "jac": lambda u: -np.ones(m)}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    # SLSQP may end slightly outside D_k (seen: Σu − k = 3.7e-8 on an AVX2 CPU), so score its feasible point
    u = np.clip(res.x, 0.0, 1.0)
    u *= min(1.0, k / u.sum())
    assert ours <= 0.5 * np.sum(c * t / (u + t)) * (1 + 1e-9)
    for _ in range(20):
        dz = rng.normal(size=z.shape) * 1e-4 * np.abs(x).max()
        assert prox_objective(z + dz, x, ids, m, k, tau, w) >= ours - 1e-12 * abs(ours)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(1, 30),
    kf=st.floats(0.0, 1.0),
    log_tau=st.floats(-2, 2),
    zeros=st.integers(0, 3),
)
def test_fenchel_young_certificate(seed: int, m: int, kf: float, log_tau: float, zeros: int) -> None:
    """y = (x − z)/τ is a subgradient of W at z: W(z) + W*(y) − ⟨z, y⟩ = 0."""
    rng = np.random.default_rng(seed)
    x, ids, w = _instance(rng, m, zero_groups=min(zeros, m - 1))
    k = 1 + int(kf * (m - 1))
    tau = 10.0**log_tau
    z = _torch_prox(x, ids, k, tau, w)
    y = (x - z) / tau
    wz, fy, zy = wgsef_value_ref(z, ids, m, k, w), conjugate(y, ids, m, k, w), float(z @ y)
    assert abs(wz + fy - zy) <= 1e-10 * max(wz + fy, 1e-300)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(1, 200),
    kf=st.floats(0.0, 1.0),
    log_tau=st.floats(-3, 2),
    zeros=st.integers(0, 5),
    ties=st.booleans(),
    weighted=st.booleans(),
)
def test_device_sweep_multipliers_match_root_select(
    seed: int, m: int, kf: float, log_tau: float, zeros: int, ties: bool, weighted: bool
) -> None:
    """Small problems take the sync-free sweep (`root_sweep_tensor`); it gives root_select's multipliers,
    including all-zero groups, ties and at most k nonzero groups."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.rand(m, dtype=torch.float64, generator=gen)
    if ties:
        r = (r * 4).ceil() / 4  # few distinct norms
    r[: min(zeros, m)] = 0
    w = torch.rand(m, dtype=torch.float64, generator=gen) + 0.2 if weighted else None
    k, tau = 1 + int(kf * (m - 1)), 10.0**log_tau
    got = wgsef_multipliers(r, k, tau, w)
    a = r if w is None else r * w.sqrt()
    t = tau if w is None else tau * w
    if int(torch.count_nonzero(a)) <= k:
        ref = 1 / (1 + torch.as_tensor(t, dtype=torch.float64).expand(m))
    else:
        u = (a * root_select(a, t, float(k)) - t).clamp(0, 1)
        u = torch.where(u > 1e-12, u, 0)
        ref = u / (u + t)
    nz = r > 0  # multipliers of all-zero groups do not matter
    assert torch.equal(got[nz] > 0, ref[nz] > 0)
    assert torch.allclose(got[nz], ref[nz], rtol=0, atol=1e-9)
    eta, found = root_sweep_tensor(a, t, float(k))
    assert bool(found) == (int(torch.count_nonzero(a)) > k)
    if found:
        assert abs(float((a * eta - t).clamp(0, 1).sum()) - k) < 1e-8  # h(η) = 0


def test_certificate_detects_a_wrong_point() -> None:
    """The certificate is not vacuous: a perturbed z gives a positive Fenchel–Young gap."""
    rng = np.random.default_rng(7)
    x, ids, w = _instance(rng, 10)
    z = _torch_prox(x, ids, 3, 0.5, w) * 1.01
    y = (x - z) / 0.5
    gap = wgsef_value_ref(z, ids, 10, 3, w) + conjugate(y, ids, 10, 3, w) - float(z @ y)
    assert gap > 1e-6


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(2, 9), kf=st.floats(0, 1), log_tau=st.floats(-1, 2))
def test_exactly_k_iff_gap_condition(seed: int, m: int, kf: float, log_tau: float) -> None:
    rng = np.random.default_rng(seed)
    k = 1 + int(kf * (m - 1))
    r = rng.uniform(0.1, 1.0, size=m)
    if rng.random() < 0.5:  # make the condition likely: strong top-k groups
        r[rng.choice(m, size=k, replace=False)] *= 1 + 2 / 10**log_tau + rng.uniform(0.5, 3)
    w = rng.uniform(0.5, 2.0, size=m)
    tau = 10.0**log_tau
    c = wgsef_multipliers(torch.tensor(r), k, tau, torch.tensor(w)).numpy()
    kept = int(np.count_nonzero(c))
    assert kept >= k
    assert (kept == k) == gap_condition(np.sqrt(w) * r, tau * w, k)
    if kept == k:  # then the survivors are just ridge-shrunk
        on = c > 0
        np.testing.assert_allclose(c[on], 1 / (1 + tau * w[on]), rtol=1e-12)


def test_keeps_at_least_min_k_nnz_and_ridge_when_few_groups() -> None:
    x = torch.tensor([[3.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    z = wgsef_prox(x, 3, 0.5)
    torch.testing.assert_close(z, x / 1.5)
    assert float(wgsef_value(x, 3)) == pytest.approx(0.5 * 11)
    assert float(wgsef_value(x, 1)) == pytest.approx(0.5 * (3 + math.sqrt(2)) ** 2)


@pytest.mark.parametrize("seed", range(5))
def test_special_cases_k1_ridge_and_sef(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    w = torch.rand(7, generator=g, dtype=torch.float64) + 0.5
    a = (w * x.square().sum(1)).sqrt()
    assert float(wgsef_value(x, 1, weights=w)) == pytest.approx(0.5 * float(a.sum()) ** 2, rel=1e-12)
    assert float(wgsef_value(x, 7, weights=w)) == pytest.approx(0.5 * float(a.square().sum()), rel=1e-12)
    v = torch.randn(12, generator=g, dtype=torch.float64)
    for k in range(1, 13):
        assert float(wgsef_value(v, k)) == pytest.approx(sef_closed_form(v.numpy(), k), rel=1e-9)


def test_tau_limits() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    w = torch.rand(20, generator=g, dtype=torch.float64) + 0.1
    torch.testing.assert_close(wgsef_prox(x, 5, 0.0, weights=w), x)
    torch.testing.assert_close(wgsef_prox(x, 5, 1e-9, weights=w), x, rtol=1e-7, atol=1e-7)
    z = wgsef_prox(x, 5, 1e8, weights=w)
    kept = set(torch.nonzero(z.norm(dim=1)).flatten().tolist())
    score = x.norm(dim=1) / w.sqrt()
    assert kept == set(torch.topk(score, 5).indices.tolist())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(2, 25), kf=st.floats(0, 1), log_tau=st.floats(-2, 2))
def test_penalty_and_prox_properties(seed: int, m: int, kf: float, log_tau: float) -> None:
    """2-homogeneity, convexity, W ≥ ridge, firm nonexpansiveness, permutation equivariance."""
    g = torch.Generator().manual_seed(seed)
    k, tau = 1 + int(kf * (m - 1)), 10.0**log_tau
    x, y = (torch.randn(m, 3, generator=g, dtype=torch.float64) for _ in range(2))
    w = torch.rand(m, generator=g, dtype=torch.float64) + 0.2
    wx, wy = float(wgsef_value(x, k, weights=w)), float(wgsef_value(y, k, weights=w))
    assert float(wgsef_value(2.5 * x, k, weights=w)) == pytest.approx(6.25 * wx, rel=1e-10)
    assert float(wgsef_value((x + y) / 2, k, weights=w)) <= (wx + wy) / 2 * (1 + 1e-12)
    assert wx >= 0.5 * float((w * x.square().sum(1)).sum()) * (1 - 1e-12)
    px, py = wgsef_prox(x, k, tau, weights=w), wgsef_prox(y, k, tau, weights=w)
    d = px - py
    assert float(d.square().sum()) <= float((d * (x - y)).sum()) + 1e-12
    perm = torch.randperm(m, generator=g)
    torch.testing.assert_close(wgsef_prox(x[perm], k, tau, weights=w[perm]), px[perm])

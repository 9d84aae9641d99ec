"""WGSEF prox: exactness against independent solvers, certificates, gap condition, properties, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from sparsenets.errors import SparsenetsError
from sparsenets.prox import (
    PROXES,
    root_bisect,
    root_select,
    root_sweep,
    root_sweep_batched,
    root_sweep_tensor,
    wgsef_multipliers,
    wgsef_multipliers_batched,
    wgsef_prox,
    wgsef_value,
)
from tests.wgsef.prox_reference import (
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


def _h(a: torch.Tensor, t, k: float, eta: float) -> float:
    return float(torch.clamp(a * eta - t, 0, 1).sum()) - k


@pytest.mark.parametrize("case", ["plain", "zeros", "ties", "flat", "weights", "big"])
def test_root_solvers_agree(case: str) -> None:
    g = torch.Generator().manual_seed(11)
    m = 10**6 if case == "big" else 2000
    a = torch.rand(m, generator=g, dtype=torch.float64)
    t: float | torch.Tensor = 0.3
    k = 50.0
    if case == "zeros":
        a[: m // 2] = 0
    if case == "ties":
        a = torch.round(a * 20) / 20 + 0.05
    if case == "flat":  # 50 strong groups far above the rest: an exactly-k interval
        a[:50] += 100
    if case in ("weights", "big"):
        t = 0.3 * (torch.rand(m, generator=g, dtype=torch.float64) + 0.5)
    etas = [root_select(a, t, k), root_sweep(a, t, k)] + ([] if case == "big" else [root_bisect(a, t, k)])
    for eta in etas:
        assert abs(_h(a, t, k, eta)) < 1e-9 * max(1.0, k)
    if case == "flat":  # any point of the flat piece: all multipliers 0 or 1/(1+τ)
        c = wgsef_multipliers(a, 50, 0.3)
        assert int(torch.count_nonzero(c)) == 50


def test_root_select_sampled_path_and_adversarial_order() -> None:
    """m above the sampling threshold, values sorted (a strided sample sees a skewed picture)."""
    g = torch.Generator().manual_seed(5)
    a = torch.rand(200_000, generator=g, dtype=torch.float64).sort().values
    for k in (1.0, 17.0, 5000.0, 199_999.0):
        for t in (0.01, 1.0, 30.0):
            assert abs(_h(a, t, k, root_select(a, t, k))) < 1e-7
        assert abs(_h(a, 0.0, k, root_select(a, 0.0, k))) < 1e-7


def test_root_select_float32_classification_is_exact() -> None:
    """The chunked float32 classification (widened thresholds, clamped float64 sums) still gives h(η) = 0 in
    float64, with ties and across k and τ."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        a = (torch.randn(400_000, generator=g) * (1 + 5 * torch.rand(400_000, generator=g))).abs()
        if seed == 0:
            a = (a * 8).round() / 8  # many ties
        for k in (1.0, 1000.0, 40_000.0, 300_000.0):
            for t in (1e-3, 0.5, 20.0):
                assert abs(_h(a.double(), t, k, root_select(a, t, k))) <= 1e-9 * k


def test_root_select_two_stage_sample_is_exact() -> None:
    """Above 2^21 groups a second, larger sample narrows the bracket before the full pass; the root stays
    exact in float64, also when the strided samples mislead: every 16th value scaled up fools the second
    sample (the first one's bracket takes over), every 2nd fools both (the full bracketing loop takes over)."""
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3_000_000, generator=g).abs()
    for order in ("random", "sorted", 16, 2):
        b = a.sort().values if order == "sorted" else a.clone()
        if isinstance(order, int):
            b[::order] *= 50
        for k in (10.0, 30_000.0, 1_500_000.0):
            for t in (0.05, 2.0):
                assert abs(_h(b.double(), t, k, root_select(b, t, k))) <= 1e-9 * k
    w = 0.5 + torch.rand(3_000_000, generator=g, dtype=torch.float64)
    assert abs(_h(a.double(), 0.7 * w, 20_000.0, root_select(a.double(), 0.7 * w, 20_000.0))) <= 1e-9 * 20_000


@pytest.mark.parametrize("m", [500, 300_000])
def test_root_select_without_a_root_returns_inf(m: int) -> None:
    """At most k positive entries: no root, every nonzero group saturates; the prox is then the ridge x/(1+τ)."""
    a = torch.zeros(m, dtype=torch.float64)
    a[:7] = torch.arange(1.0, 8.0, dtype=torch.float64)
    assert root_select(a, 0.3, 7.0) == math.inf or abs(_h(a, 0.3, 7.0, root_select(a, 0.3, 7.0))) < 1e-9
    assert root_select(a, 0.3, 9.0) == math.inf
    x = torch.zeros(m)
    x[:7] = torch.arange(1.0, 8.0) * torch.tensor([1.0, -1.0] * 3 + [1.0])
    torch.testing.assert_close(wgsef_prox(x, 9, 0.3), x / 1.3)
    torch.testing.assert_close(wgsef_prox(x.reshape(-1, 1), 9, 0.3), (x / 1.3).reshape(-1, 1))


def test_float32_same_support_as_float64() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300_000, generator=g, dtype=torch.float64)
    z64 = wgsef_prox(x, 3000, 0.7)
    z32 = wgsef_prox(x.float(), 3000, 0.7)
    assert z32.dtype == torch.float32
    assert torch.equal(z64 != 0, z32 != 0)
    torch.testing.assert_close(z32.double(), z64, rtol=1e-5, atol=1e-6)
    rows = torch.randn(500, 40, generator=g, dtype=torch.float64)
    assert torch.equal(wgsef_prox(rows, 30, 2.0) != 0, wgsef_prox(rows.float(), 30, 2.0) != 0)


@pytest.mark.parametrize("case", ["elements", "rows", "ids"])
def test_out_buffer_and_in_place_give_the_same_prox(case: str) -> None:
    """`out=` (a fresh buffer, or x itself) gives exactly the allocating result; the large elementwise path
    (chunked, |x| built in the output) matches the generic multiplier path."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(300_000 if case == "elements" else (600, 50), generator=g, dtype=torch.float64)
    ids = torch.randint(0, 900, x.shape, generator=g) if case == "ids" else None
    m = 300_000 if case == "elements" else (600 if case == "rows" else 900)
    k, tau = m // 7, 0.4
    z = wgsef_prox(x, k, tau, groups=ids)
    if case == "elements":
        ref = x * wgsef_multipliers(x.abs(), k, tau)
        torch.testing.assert_close(z, ref, rtol=0, atol=1e-12)
    buf = torch.full_like(x, float("nan"))
    assert wgsef_prox(x, k, tau, groups=ids, out=buf) is buf
    assert torch.equal(buf, z)
    y = x.clone()
    assert wgsef_prox(y, k, tau, groups=ids, out=y) is y
    assert torch.equal(y, z)


@pytest.mark.parametrize(
    "out",
    [torch.empty(10, 3), torch.empty(10, 2, dtype=torch.float64), torch.empty(2, 10).t(), "buffer"],
)
def test_bad_out_gets_one_clear_error(out: object) -> None:
    with pytest.raises(SparsenetsError, match="out must be"):
        wgsef_prox(torch.ones(10, 2), 3, 0.1, out=out)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "between 1 and"),
        ({"k": 11}, "between 1 and"),
        ({"k": 2.5}, "integer"),
        ({"tau": -1.0}, "tau"),
        ({"tau": float("nan")}, "tau"),
        ({"weights": -torch.ones(10)}, "> 0"),
        ({"weights": torch.full((10,), float("nan"))}, "NaN"),
        ({"weights": torch.ones(9)}, "one value per group"),
        ({"x": torch.tensor([[1.0, float("nan")]] * 10)}, "NaN"),
        ({"groups": torch.zeros(3, dtype=torch.long)}, "shape"),
        ({"groups": -torch.ones(10, 2, dtype=torch.long)}, ">= 0"),
    ],
)
def test_bad_input_gets_one_clear_error(kwargs: dict, match: str) -> None:
    args = {"x": torch.ones(10, 2), "k": 3, "tau": 0.1, **kwargs}
    with pytest.raises(SparsenetsError, match=match):
        wgsef_prox(**args)


def test_toy_least_squares_group_count_falls_toward_k_as_lambda_grows() -> None:
    """The spec's derived toy: 20 groups × 5, 4 true groups, k = 4, exact prox-gradient to convergence."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 100, generator=g, dtype=torch.float64)
    truth = torch.zeros(20, 5, dtype=torch.float64)
    truth[[2, 7, 11, 16]] = torch.randn(4, 5, generator=g, dtype=torch.float64)
    b = a @ truth.reshape(-1) + 0.1 * torch.randn(200, generator=g, dtype=torch.float64)
    step = 1.0 / float(torch.linalg.matrix_norm(a, ord=2) ** 2)
    counts = []
    for lam in (1e-2, 10.0, 1e3, 1e5):
        theta = torch.zeros(100, dtype=torch.float64)
        for _ in range(1200):
            theta = wgsef_prox((theta - step * a.T @ (a @ theta - b)).reshape(20, 5), 4, step * lam).reshape(
                -1
            )
        nonzero = torch.nonzero(theta.reshape(20, 5).norm(dim=1)).flatten().tolist()
        counts.append(len(nonzero))
    assert counts == sorted(counts, reverse=True) and counts[0] > 4, counts
    assert nonzero == [2, 7, 11, 16]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    blocks=st.integers(1, 6),
    same_tau=st.booleans(),
    weighted=st.booleans(),
)
def test_batched_multipliers_equal_one_block_at_a_time(
    seed: int, blocks: int, same_tau: bool, weighted: bool
) -> None:
    """Blocks of different sizes solved together (padded to one batch) get exactly the per-block multipliers,
    including all-zero groups, ties, k = m and blocks with at most k nonzero groups."""
    gen = torch.Generator().manual_seed(seed)
    rs, ks, taus, ws = [], [], [], []
    for b in range(blocks):
        m = int(torch.randint(1, 90, (1,), generator=gen))
        r = torch.rand(m, dtype=torch.float64, generator=gen)
        if b % 2:
            r = (r * 3).ceil() / 3  # ties
        r[: int(torch.randint(0, m + 1, (1,), generator=gen))] = 0  # all-zero groups, sometimes all of them
        rs.append(r)
        ks.append(int(torch.randint(1, m + 1, (1,), generator=gen)))
        taus.append(0.3 if same_tau else float(10 ** (2 * torch.rand(1, generator=gen) - 1)))
        use_w = weighted and b % 3 != 1  # mixes weighted and unit-weight blocks
        ws.append(torch.rand(m, dtype=torch.float64, generator=gen) + 0.2 if use_w else None)
    got = wgsef_multipliers_batched(rs, ks, taus, ws)
    for r, k, tau, w, c in zip(rs, ks, taus, ws, got):
        want = wgsef_multipliers(r, k, tau, w, checked=True)
        nz = r > 0  # multipliers of all-zero groups do not matter
        assert c.shape == r.shape
        assert torch.equal(c[nz] > 0, want[nz] > 0)
        torch.testing.assert_close(c[nz], want[nz], rtol=0, atol=1e-12)


def test_group_lasso_batched_equals_one_block_at_a_time() -> None:
    """The group-lasso prox used by `ProxOptimizer` solves blocks together only when that changes nothing."""
    gen = torch.Generator().manual_seed(0)
    rs = [torch.rand(m, dtype=torch.float64, generator=gen) for m in (3, 8, 5)]
    fn = PROXES["group_lasso"]
    for taus, ws in (
        ([0.2, 0.2, 0.2], [None, None, None]),
        ([0.2, 0.5, 0.2], [None, None, None]),
        (
            [0.2, 0.2, 0.2],
            [torch.rand(3, dtype=torch.float64) + 0.5, None, torch.ones(5, dtype=torch.float64)],
        ),
        ([0.3, 0.3, 0.3], [torch.rand(m, dtype=torch.float64) + 0.5 for m in (3, 8, 5)]),
    ):
        got = fn.batched(rs, [1, 1, 1], taus, ws)
        for r, t, w, c in zip(rs, taus, ws, got):
            assert torch.equal(c, fn(r, 1, t, w))


def test_batched_multipliers_reject_bad_input() -> None:
    r = torch.rand(5, dtype=torch.float64)
    with pytest.raises(SparsenetsError, match="one k, tau and weight entry per block"):
        wgsef_multipliers_batched([r, r], [2], [0.1, 0.1])
    with pytest.raises(SparsenetsError, match="one k, tau and weight entry per block"):
        wgsef_multipliers_batched([], [], [])
    with pytest.raises(SparsenetsError, match="tau"):
        wgsef_multipliers_batched([r, r], [2, 2], [0.1, float("nan")])
    with pytest.raises(SparsenetsError, match="k must be"):
        wgsef_multipliers_batched([r, r], [2, 6], [0.1, 0.1])
    with pytest.raises(SparsenetsError, match="needs a"):
        root_sweep_batched(r, 0.1, torch.ones(1, dtype=torch.float64))

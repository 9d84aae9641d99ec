"""WGSEF prox internals: the root solvers agree and are exact, out buffers, batched blocks, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import SparsenetsError
from sparsenets.prox import (
    PROXES,
    root_bisect,
    root_select,
    root_sweep,
    root_sweep_batched,
    wgsef_multipliers,
    wgsef_multipliers_batched,
    wgsef_prox,
)


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

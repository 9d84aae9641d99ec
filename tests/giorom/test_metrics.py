"""GIOROM's metrics against brute-force loops: one-step MSE, rollout MSE per frame and at horizons, exact
Chamfer distance (chunked = unchunked = a double loop), relative L2; bad shapes are one clear error."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsenets.errors import SparsenetsError
from sparsenets.giorom.metrics import (
    chamfer_distance,
    one_step_mse,
    per_frame_mse,
    relative_l2,
    rollout_mse,
)


def _points(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _chamfer_loops(a: torch.Tensor, b: torch.Tensor) -> float:
    """Chamfer distance by two explicit double loops over points."""

    def one_way(p: torch.Tensor, q: torch.Tensor) -> float:
        return sum(min(float(((x - y) ** 2).sum()) for y in q) for x in p) / len(p)

    return one_way(a, b) + one_way(b, a)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    d=st.integers(1, 3),
    chunk=st.integers(1, 5),
    seed=st.integers(0, 99),
)
def test_chamfer_equals_double_loop_for_any_chunk(n: int, m: int, d: int, chunk: int, seed: int) -> None:
    a, b = _points(seed, n, d), _points(seed + 1000, m, d)
    got = chamfer_distance(a, b, chunk=chunk)
    assert got.shape == ()
    assert float(got) == pytest.approx(_chamfer_loops(a, b), rel=1e-12, abs=1e-15)
    assert float(chamfer_distance(b, a)) == pytest.approx(float(got), rel=1e-12)  # symmetric


def test_chamfer_is_zero_on_a_permutation_and_exact_on_a_shift() -> None:
    a = _points(3, 50, 2)
    assert float(chamfer_distance(a, a[torch.randperm(50)])) == 0.0
    # a one-point set against itself shifted by (0.3, 0.4): each way 0.25
    p = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    assert float(chamfer_distance(p, p + torch.tensor([0.3, 0.4], dtype=torch.float64))) == pytest.approx(0.5)


def test_chamfer_over_frames_matches_each_frame_and_large_sets_chunk() -> None:
    a, b = _points(5, 3, 40, 2), _points(6, 3, 70, 2)
    per_frame = chamfer_distance(a, b)
    assert per_frame.shape == (3,)
    for t in range(3):
        assert float(per_frame[t]) == pytest.approx(_chamfer_loops(a[t], b[t]), rel=1e-12)
    big_a, big_b = _points(7, 3000, 2), _points(8, 2000, 2)  # forces several chunks at the default size
    full = torch.cdist(big_a, big_b, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    want = full.min(1).values.mean() + full.min(0).values.mean()
    assert float(chamfer_distance(big_a, big_b, chunk=257)) == pytest.approx(float(want), rel=1e-10)


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 6), n=st.integers(1, 7), d=st.integers(1, 3), seed=st.integers(0, 99))
def test_rollout_mse_is_the_mean_of_the_first_h_frames(t: int, n: int, d: int, seed: int) -> None:
    pred, target = _points(seed, t, n, d), _points(seed + 7, t, n, d)
    frame = [
        sum(sum(float(pred[f, i, k] - target[f, i, k]) ** 2 for k in range(d)) for i in range(n)) / n
        for f in range(t)
    ]
    assert per_frame_mse(pred, target).tolist() == pytest.approx(frame, rel=1e-12)
    got = rollout_mse(pred, target, range(1, t + 1))
    for h in range(1, t + 1):
        assert got[h] == pytest.approx(sum(frame[:h]) / h, rel=1e-12)


def test_rollout_mse_of_a_known_offset() -> None:
    target = torch.zeros(10, 4, 2)
    pred = target.clone()
    pred[5:] += torch.tensor([0.3, 0.4])  # error 0.25 per particle from frame 5 on
    got = rollout_mse(pred, target, [5, 10])
    assert got == {5: 0.0, 10: pytest.approx(0.125)}


def test_one_step_mse_scales_each_dim_then_sums() -> None:
    pred, target = torch.zeros(2, 3, 2), torch.zeros(2, 3, 2)
    pred[..., 0], pred[..., 1] = 1.0, 2.0
    scale = torch.tensor([3.0, 0.5])
    assert float(one_step_mse(pred, target, scale)) == pytest.approx(3.0**2 + 1.0**2)
    g = torch.Generator().manual_seed(0)
    a, b, s = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g), torch.rand(2, generator=g)
    brute = sum(sum(((a[i, k] - b[i, k]) * s[k]) ** 2 for k in range(2)) for i in range(5)) / 5
    assert float(one_step_mse(a, b, s)) == pytest.approx(float(brute), rel=1e-6)


def test_relative_l2_per_frame() -> None:
    target = torch.tensor([[[3.0, 4.0]], [[0.0, 2.0]]])  # norms 5 and 2
    pred = target + torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])
    assert relative_l2(pred, target).tolist() == pytest.approx([0.2, 0.5])
    assert math.isinf(float(relative_l2(torch.ones(1, 2), torch.zeros(1, 2))))


def test_nonfinite_rollouts_propagate() -> None:
    pred = torch.zeros(3, 2, 2)
    pred[2, 0, 0] = float("nan")
    assert math.isnan(rollout_mse(pred, torch.zeros(3, 2, 2), [3])[3])
    assert rollout_mse(pred, torch.zeros(3, 2, 2), [2])[2] == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: rollout_mse(torch.zeros(4, 2, 2), torch.zeros(4, 2, 2), [5]),
            "outside the 4 predicted frames",
        ),
        (lambda: rollout_mse(torch.zeros(4, 2, 2), torch.zeros(4, 3, 2), [1]), "differ in shape"),
        (lambda: per_frame_mse(torch.zeros(2, 2), torch.zeros(2, 2)), "expected positions [T, N, d]"),
        (lambda: chamfer_distance(torch.zeros(2, 5, 2), torch.zeros(3, 5, 2)), "equal leading dims"),
        (lambda: chamfer_distance(torch.zeros(0, 2), torch.zeros(3, 2)), "empty"),
        (lambda: relative_l2(torch.zeros(2, 2), torch.zeros(2, 3)), "differ in shape"),
    ],
)
def test_bad_shapes_are_one_clear_error(call, message: str) -> None:
    with pytest.raises(SparsenetsError, match=r"^[^\n]*$") as err:
        call()
    assert message in str(err.value)

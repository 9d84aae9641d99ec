"""Constitutive pieces against brute force: closed-form 2×2 polar/SVD vs numpy.linalg, return maps land on their
yield surfaces, stresses vanish at rest and under rotation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sparsenets.errors import SparsenetsError
from sparsenets.sim.materials import (
    MATERIALS,
    kirchhoff_stress,
    material,
    polar2,
    project_strain,
    svd2,
    update_deformation,
)

matrices = arrays(np.float64, (6, 2, 2), elements=st.floats(-1.0, 1.0))


def _eye(n: int) -> np.ndarray:
    return np.tile(np.eye(2), (n, 1, 1))


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_svd2_reconstructs_and_matches_linalg(F: np.ndarray) -> None:
    F = F + 2.5 * _eye(len(F))  # det ≥ 1.5² − 1 > 0: the regime MPM works in
    U, sig, V = svd2(F)
    assert np.allclose(U @ (sig[:, :, None] * np.swapaxes(V, 1, 2)), F, atol=1e-9)
    for Q in (U, V):
        assert np.allclose(Q @ np.swapaxes(Q, 1, 2), _eye(len(F)), atol=1e-9)
        assert np.allclose(np.linalg.det(Q), 1.0)
    ref = np.linalg.svd(F, compute_uv=False)
    assert np.allclose(np.sort(np.abs(sig), -1), np.sort(ref, -1), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(matrices)
def test_polar2_is_the_rotation_of_the_polar_decomposition(F: np.ndarray) -> None:
    F = F + 2.5 * _eye(len(F))
    R = polar2(F)
    S = np.swapaxes(R, 1, 2) @ F
    assert np.allclose(S, np.swapaxes(S, 1, 2), atol=1e-9)  # Rᵀ F symmetric
    assert np.allclose(np.linalg.det(R), 1.0)
    u, _, vt = np.linalg.svd(F)
    assert np.allclose(R, u @ vt, atol=1e-7)  # the polar rotation of a det > 0 matrix is U Vᵀ


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (16, 2), elements=st.floats(-0.3, 0.3)))
def test_drucker_prager_return_map_lands_in_the_cone(eps: np.ndarray) -> None:
    m = material("sand")
    out = project_strain(eps, m)
    tr, dev = out.sum(-1), out - 0.5 * out.sum(-1, keepdims=True)
    norm = np.linalg.norm(dev, axis=-1)
    # inside or on the cone: ‖ε̂‖ + (dλ + 2μ)/(2μ) tr ε α ≤ 0, and never in tension
    assert np.all(norm + (2 * m.lam + 2 * m.mu) / (2 * m.mu) * tr * m.alpha <= 1e-9)
    assert np.all(tr <= 1e-12)
    inside = (eps.sum(-1) <= 0) & (
        np.linalg.norm(eps - 0.5 * eps.sum(-1, keepdims=True), axis=-1)
        + (2 * m.lam + 2 * m.mu) / (2 * m.mu) * eps.sum(-1) * m.alpha
        <= 0
    )
    assert np.allclose(out[inside], eps[inside])  # elastic states are left alone


@settings(max_examples=80, deadline=None)
@given(arrays(np.float64, (16, 2), elements=st.floats(-0.3, 0.3)))
def test_von_mises_clamps_the_deviator_and_keeps_the_volume(eps: np.ndarray) -> None:
    m = material("plasticine")
    out = project_strain(eps, m)
    dev = out - 0.5 * out.sum(-1, keepdims=True)
    assert np.all(np.linalg.norm(dev, axis=-1) <= m.yield_strain + 1e-12)
    assert np.allclose(out.sum(-1), eps.sum(-1))  # plastic flow is isochoric
    small = np.linalg.norm(eps - 0.5 * eps.sum(-1, keepdims=True), axis=-1) <= m.yield_strain
    assert np.allclose(out[small], eps[small])


@pytest.mark.parametrize("name", list(MATERIALS))
def test_stress_vanishes_at_rest_and_under_rotation(name: str) -> None:
    m, n = MATERIALS[name], 5
    theta = np.linspace(0.1, 2.0, n)
    R = np.stack(
        [np.stack([np.cos(theta), -np.sin(theta)], -1), np.stack([np.sin(theta), np.cos(theta)], -1)], -2
    )
    for F in (np.tile(np.eye(2, dtype=np.float32), (n, 1, 1)), R.astype(np.float32)):
        assert np.abs(kirchhoff_stress(F, np.ones(n, np.float32), m)).max() < 1e-3


def test_water_pressure_and_jelly_stress_formulas() -> None:
    J = np.array([0.9, 1.1], np.float32)
    tau = kirchhoff_stress(_eye(2).astype(np.float32), J, MATERIALS["water"])
    assert np.allclose(tau, 400.0 * (J - 1)[:, None, None] * np.eye(2), atol=1e-4)  # compressed → negative
    m, s = MATERIALS["jelly"], 1.05
    F = (s * _eye(1)).astype(np.float32)  # uniform stretch: R = I
    want = 2 * m.mu * (s - 1) * s + m.lam * s**2 * (s**2 - 1)
    assert np.allclose(kirchhoff_stress(F, np.ones(1, np.float32), m), want * np.eye(2), rtol=1e-5)


def test_update_deformation_advances_F_and_J() -> None:
    n, dt = 3, 1e-3
    C = np.random.default_rng(0).normal(size=(n, 2, 2)).astype(np.float32)
    F, J = _eye(n).astype(np.float32), np.ones(n, np.float32)
    update_deformation(F, J, C, dt, MATERIALS["jelly"])
    assert np.allclose(F, np.eye(2) + dt * C, atol=1e-7)
    assert np.allclose(J, 1 + dt * np.trace(C, axis1=1, axis2=2), atol=1e-7)


def test_unknown_material_is_one_clear_error() -> None:
    with pytest.raises(SparsenetsError, match="unknown material 'honey'; choose one of: water"):
        material("honey")


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (6, 2, 2), elements=st.floats(-2.0, 2.0)))
def test_svd2_reconstructs_any_matrix_even_inverted(F: np.ndarray) -> None:
    U, sig, V = svd2(F)  # det F < 0 gives one negative σ with U, V still rotations
    assert np.allclose(U @ (sig[:, :, None] * np.swapaxes(V, 1, 2)), F, atol=1e-9)
    assert np.allclose(np.prod(sig, -1), np.linalg.det(F), atol=1e-9)

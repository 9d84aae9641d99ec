"""Independent reference solvers for the WGSEF tests (numpy, brute force; share no code with the library)."""

from __future__ import annotations

import itertools

import numpy as np


def group_sq_norms(x: np.ndarray, ids: np.ndarray, m: int) -> np.ndarray:
    """(m,) squared norms of the groups of a flat x."""
    return np.bincount(ids, weights=x**2, minlength=m)


def sef_closed_form(a: np.ndarray, k: int) -> float:
    """½·(k-support norm of a)² by the Argyriou et al. (2012) closed form on the sorted vector."""
    s = np.sort(np.abs(a))[::-1]
    if np.count_nonzero(s) <= k:
        return 0.5 * float(np.sum(s**2))
    for r in range(k):  # find r with s_r > tail/(k−r) >= s_{r+1} (1-based, s_0 = +inf)
        tail = float(np.sum(s[r:]))
        upper = np.inf if r == 0 else s[r - 1]
        if upper > tail / (k - r) >= s[r]:
            return 0.5 * float(np.sum(s[:r] ** 2)) + tail**2 / (2 * (k - r))
    raise AssertionError("no r found")


def wgsef_value_ref(x: np.ndarray, ids: np.ndarray, m: int, k: int, w: np.ndarray) -> float:
    """W_{k,w}(x) = S_k(√w·r)."""
    return sef_closed_form(np.sqrt(w * group_sq_norms(x, ids, m)), k)


def prox_by_enumeration(x: np.ndarray, ids: np.ndarray, m: int, k: int, tau: float, w: np.ndarray):
    """prox_{τW}(x) by enumerating every {0, 1, interior} pattern of u ∈ D_k (m ≤ 8).

    Uses min_z τW(z) + ½‖z−x‖² = min_{u∈D_k} ½Σ c_j τw_j/(u_j+τw_j), c_j = ‖x_j‖², z_j = x_j u_j/(u_j+τw_j);
    the interior KKT point of each pattern is closed-form. Returns (objective, z).
    """
    c = group_sq_norms(x, ids, m)
    t = tau * w
    best, best_u = np.inf, None
    for pattern in itertools.product((0, 1, 2), repeat=m):
        p = np.array(pattern)
        u = (p == 1).astype(float)
        ones, inner = int(np.sum(p == 1)), p == 2
        if ones > k:
            continue
        if inner.any():
            root = np.sqrt(c[inner] * t[inner])  # stationarity: (u_j + t_j)² ∝ c_j·t_j
            if root.sum() == 0:
                continue
            u[inner] = root * (k - ones + np.sum(t[inner])) / root.sum() - t[inner]
            if np.any(u[inner] < -1e-12) or np.any(u[inner] > 1 + 1e-12):
                continue
            u = np.clip(u, 0, 1)
        val = 0.5 * float(np.sum(c * t / (u + t)))
        if val < best:
            best, best_u = val, u
    mult = best_u / (best_u + t)
    return best, x * mult[ids]


def prox_objective(z: np.ndarray, x: np.ndarray, ids: np.ndarray, m: int, k: int, tau: float, w: np.ndarray):
    """τ·W(z) + ½‖z − x‖² with the closed-form W."""
    return tau * wgsef_value_ref(z, ids, m, k, w) + 0.5 * float(np.sum((z - x) ** 2))


def conjugate(y: np.ndarray, ids: np.ndarray, m: int, k: int, w: np.ndarray) -> float:
    """f*(y) = ½·topk_j(‖y_j‖²/w_j)."""
    v = group_sq_norms(y, ids, m) / w
    return 0.5 * float(np.sum(np.sort(v)[::-1][:k]))


def gap_condition(a: np.ndarray, t: np.ndarray, k: int) -> bool:
    """Some K, |K| = k, with max_{K}(1+t_j)/a_j <= min_{not K} t_j/a_j (brute force over subsets)."""
    m = len(a)
    hi = np.where(a > 0, (1 + t) / np.where(a > 0, a, 1), np.inf)
    lo = np.where(a > 0, t / np.where(a > 0, a, 1), np.inf)
    for K in itertools.combinations(range(m), k):
        mask = np.zeros(m, bool)
        mask[list(K)] = True
        if mask.all() or hi[mask].max() <= lo[~mask].min():
            return True
    return False

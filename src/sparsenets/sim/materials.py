"""MPM materials: parameters and constitutive updates as pure numpy (the fallback; the engine mirrors them).

Every update works on a batch of particles: F float32 [N, 2, 2] (deformation gradient), J float32 [N] (volume
ratio, water only). The stress handed to P2G is the Kirchhoff stress τ = P Fᵀ, float32 [N, 2, 2].

- water: tracks J only; τ = K (J − 1) I (the mpm88 equation of state).
- jelly: fixed-corotated; τ = 2μ (F − R) Fᵀ + λ J (J − 1) I with R the closed-form 2-D polar rotation.
- sand: Drucker–Prager return map on the log singular values (Klár et al. 2016), Hencky stress.
- plasticine: von Mises clamp of the deviatoric Hencky strain at σ_y / (2μ), Hencky stress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sparsenets.errors import SparsenetsError

# Smallest singular value fed to log(): an inverted or crushed particle must not give -inf strain.
MIN_SINGULAR = 1e-4


@dataclass(frozen=True)
class Material:
    """One material's constants (SI units with density 1; E in Pa·m²/kg for the 2-D model).

    kind: 0 water, 1 jelly, 2 sand, 3 plasticine (the engine compiles one kernel per kind).
    type_id: the GNS-style particle type written to data sets (water 5, sand 6, jelly 7, plasticine 8).
    """

    name: str
    kind: int
    type_id: int
    E: float
    nu: float = 0.2
    friction_deg: float = 0.0
    yield_stress: float = 0.0

    @property
    def mu(self) -> float:
        """Shear modulus μ = E / (2 (1 + ν))."""
        return self.E / (2.0 * (1.0 + self.nu))

    @property
    def lam(self) -> float:
        """Lamé λ = E ν / ((1 + ν)(1 − 2ν))."""
        return self.E * self.nu / ((1.0 + self.nu) * (1.0 - 2.0 * self.nu))

    @property
    def alpha(self) -> float:
        """Drucker–Prager cone coefficient α = √(2/3) · 2 sin φ / (3 − sin φ) (0 unless sand)."""
        s = math.sin(math.radians(self.friction_deg))
        return math.sqrt(2.0 / 3.0) * 2.0 * s / (3.0 - s)

    @property
    def yield_strain(self) -> float:
        """von Mises radius of the deviatoric Hencky strain, σ_y / (2μ) (0 unless plasticine)."""
        return self.yield_stress / (2.0 * self.mu)


# Moduli keep the spec's dt 2e-4 on a 64² grid well inside the elastic CFL limit: c·dt/dx ≤ 0.55 with
# c = √((λ + 2μ)/ρ). Jelly is mpm99's (E 5e3 softened by its factor 0.3); E 5e3 itself (c·dt/dx 0.95) blew up
# when a block hit a corner at 2.8 m/s.
MATERIALS: dict[str, Material] = {
    "water": Material("water", 0, 5, E=400.0),
    "jelly": Material("jelly", 1, 7, E=1.5e3, nu=0.2),
    "sand": Material("sand", 2, 6, E=2e3, nu=0.2, friction_deg=30.0),
    "plasticine": Material("plasticine", 3, 8, E=2e3, nu=0.3, yield_stress=60.0),
}


def material(name: str | Material) -> Material:
    """The material called `name` (water, jelly, sand, plasticine); a `Material` passes through."""
    if isinstance(name, Material):
        return name
    if name not in MATERIALS:
        raise SparsenetsError(f"unknown material {name!r}; choose one of: {', '.join(MATERIALS)}")
    return MATERIALS[name]


def _rotation(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def polar2(F: np.ndarray) -> np.ndarray:
    """Rotation R [N, 2, 2] of the 2-D polar decomposition F = R S (S symmetric), in closed form."""
    theta = np.arctan2(F[:, 1, 0] - F[:, 0, 1], F[:, 0, 0] + F[:, 1, 1])
    return _rotation(theta).astype(F.dtype)


def svd2(F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form 2×2 SVD F = U diag(σ) Vᵀ from polar + symmetric eigen: U, V [N, 2, 2], σ [N, 2].

    σ may be negative when det F < 0 (U, V stay rotations); callers clamp before taking logs.
    """
    R = polar2(F)
    S = np.einsum("nji,njk->nik", R, F)  # Rᵀ F, symmetric
    a, b, d = S[:, 0, 0], 0.5 * (S[:, 0, 1] + S[:, 1, 0]), S[:, 1, 1]
    phi = 0.5 * np.arctan2(2.0 * b, a - d)
    c, s = np.cos(phi), np.sin(phi)
    sig0 = a * c * c + 2.0 * b * c * s + d * s * s
    sig1 = a * s * s - 2.0 * b * c * s + d * c * c
    V = _rotation(phi).astype(F.dtype)
    return R @ V, np.stack([sig0, sig1], -1).astype(F.dtype), V


def _hencky_stress(U: np.ndarray, eps: np.ndarray, m: Material) -> np.ndarray:
    """τ = U diag(2μ ε + λ tr ε) Uᵀ for log strains eps [N, 2]."""
    diag = 2.0 * m.mu * eps + m.lam * eps.sum(-1, keepdims=True)
    return np.einsum("nij,nj,nkj->nik", U, diag, U).astype(np.float32)


def kirchhoff_stress(F: np.ndarray, J: np.ndarray, m: Material) -> np.ndarray:
    """Kirchhoff stress τ [N, 2, 2] of each particle from F [N, 2, 2] and J [N] (water uses J only)."""
    eye = np.eye(2, dtype=np.float32)
    if m.kind == 0:
        return (m.E * (J - 1.0))[:, None, None] * eye
    if m.kind == 1:
        R = polar2(F)
        det = np.linalg.det(F).astype(np.float32)
        return 2.0 * m.mu * (F - R) @ np.swapaxes(F, 1, 2) + (m.lam * det * (det - 1.0))[:, None, None] * eye
    U, sig, _ = svd2(F)
    return _hencky_stress(U, np.log(np.maximum(sig, MIN_SINGULAR)), m)


def project_strain(eps: np.ndarray, m: Material) -> np.ndarray:
    """Plastic return map on log singular values eps [N, 2]: Drucker–Prager (sand) or von Mises (plasticine)."""
    tr = eps.sum(-1, keepdims=True)
    dev = eps - 0.5 * tr
    norm = np.sqrt((dev * dev).sum(-1, keepdims=True))
    safe = np.where(norm > 0, norm, 1.0)
    if m.kind == 3:
        dgamma = norm - m.yield_strain
        return np.where(dgamma > 0, eps - dgamma * dev / safe, eps)
    dgamma = norm + (2.0 * m.lam + 2.0 * m.mu) / (2.0 * m.mu) * tr * m.alpha
    out = np.where((dgamma > 0) & (norm > 0), eps - dgamma * dev / safe, eps)
    return np.where(tr > 0, 0.0, out)  # stretched sand has no cohesion: back to the cone's tip


def update_deformation(F: np.ndarray, J: np.ndarray, C: np.ndarray, dt: float, m: Material) -> np.ndarray:
    """Advance F ← (I + dt C) F and J ← J (1 + dt tr C) in place, apply the material's plasticity, and return the
    Kirchhoff stress τ [N, 2, 2] of the new state (the next P2G's; plastic materials reuse this step's SVD)."""
    J *= 1.0 + dt * (C[:, 0, 0] + C[:, 1, 1])
    F[:] = (np.eye(2, dtype=np.float32) + dt * C) @ F
    if m.kind < 2:
        return kirchhoff_stress(F, J, m)
    U, sig, V = svd2(F)
    eps = project_strain(np.log(np.maximum(sig, MIN_SINGULAR)), m)
    F[:] = np.einsum("nij,nj,nkj->nik", U, np.exp(eps), V).astype(np.float32)
    return _hencky_stress(U, eps, m)

"""Error metrics of particle rollouts as pure tensor functions: one-step acceleration MSE, rollout MSE per frame
and at given horizons, exact chunked Chamfer distance and relative L2.

Conventions (spec "Training → Metrics"): a squared error sums over the spatial dims and averages over particles
(and frames); positions are [..., N, d] with N particles in d dims. Non-finite predictions (a diverged rollout)
propagate as inf/NaN, so a report can say "diverged" instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparsenets.errors import SparsenetsError

CHAMFER_CHUNK_ELEMENTS = 1 << 22  # pairwise distances held at once (~16 MB in float32)


def _same_shape(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise SparsenetsError(
            f"{name}: prediction {tuple(a.shape)} and target {tuple(b.shape)} differ in shape"
        )


def one_step_mse(acc_pred: torch.Tensor, acc_target: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """One-step MSE in physical units: mean over particles of Σ_dims((â − a)·s)².

    Args:
        acc_pred: normalised predicted accelerations â, [..., N, d].
        acc_target: normalised target accelerations a, [..., N, d].
        scale: the normalisation scale s per dim, [d] (or a scalar): a_phys = a_norm·s + μ, μ cancels.

    Returns:
        a scalar tensor.
    """
    _same_shape("one_step_mse", acc_pred, acc_target)
    return (((acc_pred - acc_target) * scale) ** 2).sum(-1).mean()


def per_frame_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared position error per frame: mean over particles of Σ_dims(x̂ − x)².

    Args:
        pred, target: positions [T, N, d] (frame 0 = the first predicted frame).

    Returns:
        [T] errors.
    """
    _same_shape("per_frame_mse", pred, target)
    if pred.dim() != 3:
        raise SparsenetsError(f"per_frame_mse: expected positions [T, N, d], got shape {tuple(pred.shape)}")
    return ((pred - target) ** 2).sum(-1).mean(-1)


def rollout_mse(pred: torch.Tensor, target: torch.Tensor, horizons: Sequence[int]) -> dict[int, float]:
    """Rollout MSE at each horizon h: mean over the first h predicted frames and all particles of
    Σ_dims(x̂ − x)² (LagrangeBench's `mse{h}` convention: an average up to h, not the error at frame h).

    Args:
        pred, target: positions [T, N, d] (frame 0 = the first predicted frame, one step after the history).
        horizons: frame counts, each in [1, T].

    Returns:
        {h: MSE} as Python floats.
    """
    errors = per_frame_mse(pred, target)
    bad = [h for h in horizons if not 1 <= h <= errors.shape[0]]
    if bad:
        raise SparsenetsError(
            f"rollout_mse: horizons {bad} lie outside the {errors.shape[0]} predicted frames; "
            "roll out longer or ask for shorter horizons"
        )
    cumulative = errors.double().cumsum(0)  # float64: a 150-frame sum keeps its small terms
    return {int(h): float(cumulative[h - 1] / h) for h in horizons}


def _nearest_sq(a: torch.Tensor, b: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For [N, d] and [M, d] point sets: min_j |a_i − b_j|² per i ([N]) and min_i |a_i − b_j|² per j ([M]),
    by explicit differences (exact, unlike the matmul expansion), `chunk` rows of a at a time."""
    a_min = torch.empty(a.shape[0], dtype=a.dtype, device=a.device)
    b_min = torch.full((b.shape[0],), float("inf"), dtype=a.dtype, device=a.device)
    for start in range(0, a.shape[0], chunk):
        d2 = ((a[start : start + chunk, None, :] - b[None, :, :]) ** 2).sum(-1)  # [chunk, M]
        a_min[start : start + chunk] = d2.min(1).values
        b_min = torch.minimum(b_min, d2.min(0).values)
    return a_min, b_min


def chamfer_distance(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Exact symmetric Chamfer distance: mean_i min_j |a_i − b_j|² + mean_j min_i |a_i − b_j|².

    Computed in row chunks so memory stays at about `CHAMFER_CHUNK_ELEMENTS` pair distances whatever the sizes.

    Args:
        a: points [..., N, d].
        b: points [..., M, d] with the same leading dims (e.g. frames) and d.
        chunk: rows of `a` per chunk (default: from `CHAMFER_CHUNK_ELEMENTS`).

    Returns:
        [...] distances (a scalar tensor for two plain point sets).
    """
    if a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-1] or a.dim() < 2:
        raise SparsenetsError(
            f"chamfer_distance: point sets {tuple(a.shape)} and {tuple(b.shape)} need shapes [..., N, d] and "
            "[..., M, d] with equal leading dims and d"
        )
    if a.shape[-2] == 0 or b.shape[-2] == 0:
        raise SparsenetsError("chamfer_distance: a point set is empty; both need at least one point")
    rows = chunk or max(1, CHAMFER_CHUNK_ELEMENTS // b.shape[-2])
    flat_a, flat_b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    out = torch.stack([sum(m.mean() for m in _nearest_sq(x, y, rows)) for x, y in zip(flat_a, flat_b)])
    return out.reshape(a.shape[:-2])


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative L2 error ‖x̂ − x‖ / ‖x‖ over the last two dims (particles × dims), per leading index.

    Pass displacements (x − X) rather than positions for a figure that does not shrink with the box offset.

    Args:
        pred, target: [..., N, d].

    Returns:
        [...] ratios (inf where a target is all zero and the prediction is not).
    """
    _same_shape("relative_l2", pred, target)
    return torch.linalg.vector_norm(pred - target, dim=(-2, -1)) / torch.linalg.vector_norm(
        target, dim=(-2, -1)
    )

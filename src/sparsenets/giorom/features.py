"""Pure tensor pieces of the stepper's input and output: statistics, training noise, features, the integrator.

Time is counted in frames (Δt = 1): a velocity is x_t − x_{t−1}, an acceleration v_{t+1} − v_t.
"""

from __future__ import annotations

import math

import torch

from sparsenets.errors import ConfigError
from sparsenets.giorom.config import Statistics


def require_finite(x: torch.Tensor, what: str) -> None:
    """Raise ConfigError naming `what` if `x` holds NaN or inf (one host read)."""
    if not bool(torch.isfinite(x).all()):
        raise ConfigError(f"{what} contain NaN or inf; clean the data set (or check the simulator) first")


def statistics(positions: torch.Tensor, noise_std: float = 3e-4) -> Statistics:
    """Velocity and acceleration mean/std per dimension over every frame of every training trajectory.

    Args:
        positions: [n_traj, T, N, d] training trajectories (T >= 3).
        noise_std: the random-walk σ to train with, stored alongside.

    Returns:
        Statistics with d-tuples (computed in float64, one trajectory at a time to bound memory).
    """
    if positions.dim() != 4 or positions.shape[1] < 3:
        raise ConfigError(f"statistics needs positions [n_traj, T >= 3, N, d], got {tuple(positions.shape)}")
    require_finite(positions, "positions")
    d = positions.shape[-1]
    sums = torch.zeros(4, d, dtype=torch.float64)  # Σv, Σv², Σa, Σa²
    nv = na = 0
    for traj in positions:
        v = (traj[1:] - traj[:-1]).double().reshape(-1, d)
        a = (traj[2:] - 2 * traj[1:-1] + traj[:-2]).double().reshape(-1, d)
        sums += torch.stack([v.sum(0), (v * v).sum(0), a.sum(0), (a * a).sum(0)])
        nv, na = nv + v.shape[0], na + a.shape[0]
    vm, am = sums[0] / nv, sums[2] / na
    vs = (sums[1] / nv - vm**2).clamp_min(0).sqrt()
    as_ = (sums[3] / na - am**2).clamp_min(0).sqrt()
    tiny = 1e-12  # a trajectory at rest has zero spread; keep the normalisation finite
    return Statistics(
        vel_mean=tuple(vm.tolist()),
        vel_std=tuple(max(float(s), tiny) for s in vs),
        acc_mean=tuple(am.tolist()),
        acc_std=tuple(max(float(s), tiny) for s in as_),
        noise_std=float(noise_std),
    )


def displacement_scale(positions: torch.Tensor, reference: torch.Tensor | None = None) -> float:
    """Root mean square displacement |x(t) − X| per dimension over all frames: the decoder's `scale`.

    Args:
        positions: [n_traj, T, N, d] trajectories; reference: [n_traj, N, d] X (default: frame 0).

    Returns:
        sqrt(mean over trajectories, frames, particles and dims of (x − X)²), floored at 1e-12.
    """
    if positions.dim() != 4:
        raise ConfigError(
            f"displacement_scale needs positions [n_traj, T, N, d], got {tuple(positions.shape)}"
        )
    require_finite(positions, "positions")
    ref = positions[:, 0] if reference is None else reference
    total = sum(float(((traj.double() - x0.double()) ** 2).mean()) for traj, x0 in zip(positions, ref))
    return max(math.sqrt(total / positions.shape[0]), 1e-12)


def random_walk_noise(
    window: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """GNS random-walk noise for a window of C + 1 positions: the first position stays clean.

    Each of the C velocities gets ε_k ~ N(0, (σ/√C)²), cumulated over k; positions cumulate the velocity noise.

    Args:
        window: [..., C + 1, d] positions (used for shape, dtype and device).
        sigma: σ, the std of the noise on the last velocity.

    Returns:
        [..., C + 1, d] position noise, zero at index 0.
    """
    c = window.shape[-2] - 1
    shape = (*window.shape[:-2], c, window.shape[-1])
    eps = torch.randn(shape, generator=generator, dtype=window.dtype).to(window.device)
    vel_noise = torch.cumsum(eps * (sigma / math.sqrt(c)), dim=-2)
    pos_noise = torch.cumsum(vel_noise, dim=-2)
    return torch.cat([torch.zeros_like(pos_noise[..., :1, :]), pos_noise], dim=-2)


def corrected_target(noisy: torch.Tensor, next_pos: torch.Tensor) -> torch.Tensor:
    """The acceleration that takes a noisy window to the clean next position: (x_{t+1} − x̃_t) − ṽ_t.

    Args:
        noisy: [..., C + 1, d] noisy positions; next_pos: [..., d] clean x_{t+1}.

    Returns:
        [..., d] target acceleration a with x̃_t + ṽ_t + a = x_{t+1}.
    """
    last = noisy[..., -1, :]
    return (next_pos - last) - (last - noisy[..., -2, :])


def integrate(window: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
    """Semi-implicit Euler with Δt = 1 frame: v_{t+1} = (x_t − x_{t−1}) + a, x_{t+1} = x_t + v_{t+1}.

    Args:
        window: [M, K >= 2, d] positions, the last two x_{t−1}, x_t used; acc: [M, d].

    Returns:
        [M, d] next positions x_{t+1}.
    """
    last = window[:, -1]
    return last + ((last - window[:, -2]) + acc)


def node_inputs(
    window: torch.Tensor,
    vel_mean: torch.Tensor,
    vel_scale: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    radius: float,
    acc_norm: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Normalised velocity history, clipped wall distances and (optionally) normalised acceleration history.

    Args:
        window: [M, C + 1, d] positions; vel_mean, vel_scale, low, high: [d].
        radius: R; wall distances are (x − low)/R and (high − x)/R clipped to [−1, 1].
        acc_norm: (acc_mean, acc_scale), each [d], to append the C − 1 past accelerations
            (v_k − v_{k−1} − acc_mean)/acc_scale; None for velocities only (the GNS inputs).

    Returns:
        [M, C·d + 2d] features, or [M, (2C − 1)·d + 2d] with `acc_norm`.
    """
    raw = window[:, 1:] - window[:, :-1]
    vel = (raw - vel_mean) / vel_scale
    last = window[:, -1]
    walls = torch.cat([(last - low) / radius, (high - last) / radius], dim=-1).clamp(-1.0, 1.0)
    if acc_norm is None:
        return torch.cat([vel.flatten(1), walls], dim=-1)
    acc = (raw[:, 1:] - raw[:, :-1] - acc_norm[0]) / acc_norm[1]
    return torch.cat([vel.flatten(1), walls, acc.flatten(1)], dim=-1)


def edge_inputs(pos: torch.Tensor, edge_index: torch.Tensor, radius: float) -> torch.Tensor:
    """Relative displacement (x_i − x_j)/R of receiver i and sender j, and its norm.

    Args:
        pos: [M, d]; edge_index: [2, E] (senders, receivers).

    Returns:
        [E, d + 1] edge features.
    """
    rel = (pos[edge_index[1]] - pos[edge_index[0]]) / radius
    return torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)

"""The WGSEF penalty W_{k,w} and its exact prox (Refael, Arbel, Huleihel, arXiv:2212.12921; see the spec).

W(θ) = ½·min_{u ∈ D_k} Σ_j w_j r_j²/u_j with r_j = ‖θ_{g_j}‖, D_k = {u ∈ [0,1]^m : Σu ≤ k}: the convex envelope
of ½Σw_j r_j² restricted to at most k nonzero groups (½ · squared weighted group k-support norm).
prox_{τW}(x) scales group j by c_j = u_j/(u_j + τw_j), u_j = clip(a_j·η − τw_j, 0, 1), a_j = √w_j·r_j, where η
is the root of Σu_j = k (`sparsenets.prox.roots`). Groups with u = 1 are kept (shrunk by 1/(1+τw)), 0 < u < 1 form
a "band" (group soft-threshold), u = 0 are pruned.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from sparsenets.errors import SparsenetsError
from sparsenets.prox.checks import check_finite_norms, check_k, check_tau, check_weights
from sparsenets.prox.layout import check_out, group_norms, resolve_layout, scale_groups
from sparsenets.prox.roots import root_select, root_sweep_batched, root_sweep_tensor

_BIG = 1 << 16  # above this many float32 groups, multipliers are computed in float32 (one pass fewer)
_SWEEP_MAX = 4096  # up to here the sort sweep beats root_select (3-9x on CPU) and never syncs a GPU

if TYPE_CHECKING:
    from sparsenets.groups import GroupLayout


def _snap_eps(dtype: torch.dtype) -> float:
    # round-off otherwise leaves ~1e-16 "ghost" groups at the lower breakpoint
    return 1e-12 if dtype == torch.float64 else 1e-6


def wgsef_multipliers(
    r: torch.Tensor, k: int, tau: float, weights: torch.Tensor | None = None, *, checked: bool = False
) -> torch.Tensor:
    """Per-group multipliers c of prox_{τW_{k,w}} given the group norms.

    Up to 4096 groups the whole computation stays on r's device with no host read-back (a GPU training step
    never waits for it); larger problems use the worst-case O(m) `root_select`.

    Args:
        r: (m,) group norms ≥ 0 (float32 or float64).
        k: groups to keep, 1 ≤ k ≤ m.
        tau: prox step τ ≥ 0 (lr · λ).
        weights: (m,) positive weights w_j (default ones).
        checked: the caller checks that r is finite (up to 4096 groups; above, it is checked here) and has
            validated the weights (skips a device sync).

    Returns:
        (m,) multipliers in [0, 1/(1+τw_j)], float64 unless r is float32 with more than 65536 groups.
    """
    m = r.numel()
    k = check_k(k, m)
    tau = check_tau(tau)
    if checked:
        w = None if weights is None else weights.to(device=r.device, dtype=torch.float64)
        if m > _SWEEP_MAX:  # root_select reads back anyway, and NaN would derail its bracketing
            check_finite_norms(r)
    else:
        w = check_weights(weights, m, r)
        check_finite_norms(r)
    work = r.dtype if (r.dtype == torch.float32 and m > _BIG) else torch.float64
    if tau == 0:
        return torch.ones(m, dtype=work, device=r.device)
    a = r.to(work) if w is None else r.double() * w.sqrt()
    t = tau if w is None else tau * w
    if m <= _SWEEP_MAX:
        eta, found = root_sweep_tensor(a, t, float(k))
        saturate = 1.0 / (1.0 + t)  # a Python float for unit weights: no host-to-device copy on a GPU
        return torch.where(found, _from_root(a, t, eta), saturate)
    eta = root_select(a, t, float(k))
    if math.isinf(eta):  # at most k nonzero groups: all of them saturate
        return 1.0 / (1.0 + (t if w is not None else torch.full_like(a, t)))
    return _from_root(a, t, eta)


def wgsef_multipliers_batched(
    rs: Sequence[torch.Tensor],
    ks: Sequence[int],
    taus: Sequence[float],
    weights: Sequence[torch.Tensor | None] | None = None,
) -> list[torch.Tensor]:
    """`wgsef_multipliers(..., checked=True)` for several blocks in one set of kernels (a GPU step launches the
    sweep once instead of once per layer). Blocks over 4096 groups, or with τ = 0, are solved one by one.

    Args:
        rs: B tensors (m_b,) of finite group norms ≥ 0 on one device.
        ks: groups to keep per block, 1 ≤ k_b ≤ m_b.
        taus: prox step per block, ≥ 0.
        weights: per block None (ones) or (m_b,) validated positive weights.

    Returns:
        B float64 tensors (m_b,): the multipliers of each block, as `wgsef_multipliers` gives them.
    """
    weights = list(weights) if weights is not None else [None] * len(rs)
    if not rs or not len(rs) == len(ks) == len(taus) == len(weights):
        raise SparsenetsError(
            f"need one k, tau and weight entry per block; got {len(rs)} blocks, {len(ks)} k, {len(taus)} tau, "
            f"{len(weights)} weights"
        )
    taus = [check_tau(t) for t in taus]
    ms = tuple(int(r.numel()) for r in rs)
    if max(ms) > _SWEEP_MAX or min(taus) <= 0:
        return [wgsef_multipliers(r, k, tau, w, checked=True) for r, k, tau, w in zip(rs, ks, taus, weights)]
    device = rs[0].device
    for k, m in zip(ks, ms):
        check_k(k, m)
    pos, k_t = _batch_plan(ms, tuple(int(k) for k in ks), device)
    bsz, width = len(ms), max(ms)

    def padded(parts: list[torch.Tensor], fill: float) -> torch.Tensor:
        flat = torch.cat([q.to(device=device, dtype=torch.float64).reshape(-1) for q in parts])
        out = torch.full((bsz * width,), fill, dtype=torch.float64, device=device)
        return out.index_copy_(0, pos, flat).view(bsz, width)

    a = padded(list(rs), 0.0)  # padding has norm 0: breakpoints at +inf, never counted, multiplier 0
    t: float | torch.Tensor = float(taus[0])
    if any(tau != taus[0] for tau in taus):
        t = torch.tensor([float(tau) for tau in taus], dtype=torch.float64).to(device).unsqueeze(1)
    if any(w is not None for w in weights):
        w = padded([torch.ones(m) if wb is None else wb for wb, m in zip(weights, ms)], 1.0)
        a, t = a * w.sqrt(), t * w
    eta, found = root_sweep_batched(a, t, k_t)
    c = torch.where(found.unsqueeze(1), _from_root(a, t, eta.unsqueeze(1)), 1.0 / (1.0 + t))
    return list(c.reshape(-1).index_select(0, pos).split(ms))


@functools.lru_cache(maxsize=32)
def _batch_plan(
    ms: tuple[int, ...], ks: tuple[int, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat positions of each block's groups in the (B, max m) padded batch, and the targets k, on `device`
    (built once per block shape: no host-to-device copy per step)."""
    width = max(ms)
    pos = torch.cat([torch.arange(m) + b * width for b, m in enumerate(ms)])
    return pos.to(device), torch.tensor(ks, dtype=torch.float64).to(device)


def _from_root(a: torch.Tensor, t: float | torch.Tensor, eta: float | torch.Tensor) -> torch.Tensor:
    """Multipliers c = u/(u + t) with u = clip(a·η − t, 0, 1) (t > 0)."""
    u = a * eta
    u.sub_(t).clamp_(0, 1)
    u = torch.where(u > _snap_eps(u.dtype), u, 0)
    return u / (u + t)


def wgsef_prox(
    x: torch.Tensor,
    k: int,
    tau: float,
    groups: torch.Tensor | GroupLayout | None = None,
    weights: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """prox_{τ·W_{k,w}}(x) = argmin_z τ·W(z) + ½‖z − x‖², exact, in worst-case linear time in the groups.

    Args:
        x: the tensor; 1-D with `groups=None`: every element is a group (the SEF); ≥ 2-D: each x[i] is a group.
        k: number of groups the penalty aims at, 1 ≤ k ≤ m.
        tau: step τ ≥ 0.
        groups: optional integer ids shaped like x (groups 0..max).
        weights: optional (m,) positive group weights w_j (cost of group j in ½Σw_j r_j²).
        out: optional contiguous tensor like x that receives z (x itself for an in-place prox); saves the
            allocation of a fresh output, which for large x costs as much as a pass over it.

    Returns:
        z shaped and typed like x (float32 in: the root is solved in float64); `out` when given.
    """
    layout = resolve_layout(x, groups)
    if out is not None:
        check_out(out, x)
    if layout.kind == "elements" and weights is None and layout.m > _BIG:
        return _elementwise_prox(x, k, tau, out)
    c = wgsef_multipliers(group_norms(x, layout), k, tau, weights)
    return scale_groups(x, c, layout, out)


_CHUNK = 1 << 20  # elements per chunk of the final elementwise pass: its temporaries stay small and cached


def _elementwise_prox(x: torch.Tensor, k: int, tau: float, out: torch.Tensor | None) -> torch.Tensor:
    """The unit-weight elementwise case: z = sign(x)·min(max(|x| − θ, 0), |x|/(1+τ)) with θ = τ/η, which is
    x·u/(u+τ) written without the multipliers (band: soft-threshold; kept: ridge-shrunk). |x| for the root is
    built in the output buffer (unless it is x itself), and the final pass runs in chunks with small temporaries."""
    k, tau = check_k(k, x.numel()), check_tau(tau)
    xf = x.reshape(-1)
    z = torch.empty_like(x) if out is None else out
    zf = z.view(-1)
    in_place = z.data_ptr() == x.data_ptr()
    a = xf.abs() if in_place else torch.abs(xf, out=zf)
    check_finite_norms(a)
    if tau == 0:
        return z if in_place else z.copy_(x)
    eta = root_select(a, tau, float(k))
    if math.isinf(eta):  # at most k nonzero elements: all of them saturate
        return torch.div(x, 1 + tau, out=z)
    theta = tau / eta
    c = tau / (1 + tau)
    for start in range(0, xf.numel(), _CHUNK):
        xs = xf[start : start + _CHUNK]
        # soft(x, θ) − c·soft(x, θ/c): 0 up to θ, x − θ (band) up to θ/c, then x/(1+τ) (kept); three fused ops
        torch.add(
            F.softshrink(xs, theta), F.softshrink(xs, theta / c), alpha=-c, out=zf[start : start + _CHUNK]
        )
    return z


def wgsef_value_from_norms(r: torch.Tensor, k: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """W_{k,w} from the (m,) group norms: a 0-d float64 tensor."""
    m = r.numel()
    k = check_k(k, m)
    w = check_weights(weights, m, r)
    check_finite_norms(r)
    a = r.double() if w is None else r.double() * w.sqrt()
    eta = root_select(a, 0.0, float(k))  # Σ min(a·η, 1) = k
    if math.isinf(eta):  # at most k nonzero groups: the envelope is the plain ridge
        return 0.5 * a.square().sum()
    sat = a * eta >= 1
    return 0.5 * (torch.where(sat, a.square(), 0).sum() + torch.where(sat, 0, a).sum() / eta)


def wgsef_value(
    x: torch.Tensor,
    k: int,
    groups: torch.Tensor | GroupLayout | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The penalty W_{k,w}(x) (same layout rules as `wgsef_prox`): a 0-d float64 tensor."""
    layout = resolve_layout(x, groups)
    return wgsef_value_from_norms(group_norms(x, layout), k, weights)

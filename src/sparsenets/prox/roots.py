"""Roots of the WGSEF prox equation h(η) = Σ_j clip(a_j·η − t_j, 0, 1) − k = 0.

Every structured prox in `sparsenets.prox` reduces a tensor to one norm per group; WGSEF then needs the root η
of this monotone, piecewise-linear function of one variable (a_j = √w_j·r_j > 0, t_j = τ·w_j ≥ 0).
Group j has two breakpoints: lo_j = t_j/a_j (it starts to grow) and hi_j = (1 + t_j)/a_j (it saturates at 1).

Three solvers with one contract, all returning η in float64 as a Python float:
- `root_select`: worst-case O(m) (the paper's claim). Bracketing on medians of the breakpoints inside the
  bracket, with affine accumulators for groups that left it; strided-sample brackets first (8192 groups, then
  above 2^21 groups a second sample of m/16 classified against the first) so that the only full pass over the m
  groups is one classification (`sparsenets.prox.classify`). Returns inf when at most k groups are nonzero.
- `root_sweep`: the O(m log m) sort-and-cumsum event sweep (the reference and the benchmark baseline);
  `root_sweep_tensor` is the same sweep returning tensors, so a GPU never waits on the host (small layers).
- `root_bisect`: bisection with an exact solve on the last linear piece (a slow, simple cross-check).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import torch

from sparsenets.errors import SparsenetsError
from sparsenets.prox.classify import classify_shift, classify_unit
from sparsenets.prox.select import kth_smallest

Shift = float | torch.Tensor  # t = τ·w: a Python float for unit weights, else a tensor shaped like a

_SMALL = 64  # below this many breakpoints a sort beats the selection machinery
_SAMPLE = 8192  # groups in the strided sample that brackets the root before the full pass
_WIDE_FROM = 1 << 21  # above this many groups a second sample of m/_WIDE_STEP groups narrows the bracket
_WIDE_STEP = 16
_SORT_MAX = 1 << 16  # at most this many sampled groups are sorted per bracket estimate (keeps the root O(m))


def _take(a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """a[mask]; small inputs use masked_select, which stays on one thread (a[mask] wakes the pool)."""
    return a.masked_select(mask) if a.numel() <= 1 << 16 else a[mask]


def _as_vec(t: Shift, like: torch.Tensor) -> torch.Tensor:
    return t if isinstance(t, torch.Tensor) else torch.full_like(like, float(t))


def h_value(a: torch.Tensor, t: Shift, k: float, eta: float) -> float:
    """h(η) = Σ clip(a·η − t, 0, 1) − k in float64 (a: (m,), t: float or (m,))."""
    return (
        float(torch.clamp(a.double() * eta - (t.double() if isinstance(t, torch.Tensor) else t), 0, 1).sum())
        - k
    )


def root_sweep(a: torch.Tensor, t: Shift, k: float) -> float:
    """Solve h(η) = 0 by sorting the 2m breakpoints and sweeping slopes/offsets with cumulative sums.

    Args:
        a: (m,) group strengths, a_j ≥ 0 (zeros are ignored); at least one more than k positive entries.
        t: τ·w_j, a float or an (m,) tensor, ≥ 0.
        k: target (may be fractional).

    Returns:
        η ≥ 0 with h(η) = 0; in a flat exactly-k interval, a point inside it.
    """
    return float(root_sweep_tensor(a, t, k)[0])


def root_sweep_tensor(a: torch.Tensor, t: Shift, k: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The event sweep of `root_sweep` without reading anything back to the host (no device sync on a GPU).

    Args:
        a: (m,) group strengths ≥ 0; zeros allowed (their breakpoints sit at +inf and never count).
        t: τ·w_j, a float or an (m,) tensor, ≥ 0.
        k: target (may be fractional).

    Returns:
        (η, found): 0-d float64 tensors on a's device; found is False when at most k entries of a are
        positive (then no root exists, every nonzero group saturates, and η is meaningless).
    """
    a = a.double().reshape(1, -1)
    tv = t.double().reshape(1, -1) if isinstance(t, torch.Tensor) else t
    eta, found = root_sweep_batched(a, tv, torch.full((1,), float(k), dtype=a.dtype, device=a.device))
    return eta[0], found[0]


def root_sweep_batched(a: torch.Tensor, t: Shift, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`root_sweep_tensor` for B independent problems at once (one set of kernels for all rows; no host read).

    Args:
        a: (B, M) float64 group strengths ≥ 0; rows shorter than M are padded with zeros (they never count).
        t: τ·w, a float or a (B, M) / (B, 1) float64 tensor, ≥ 0.
        k: (B,) float64 targets.

    Returns:
        (η, found): (B,) float64 and (B,) bool, as in `root_sweep_tensor` per row.
    """
    if a.dim() != 2 or k.shape != (a.shape[0],):
        raise SparsenetsError(
            f"root_sweep_batched needs a (B, M) and k (B,); got {tuple(a.shape)} and {tuple(k.shape)}"
        )
    bsz, m = a.shape
    tv = t.to(a.dtype).expand(bsz, m) if isinstance(t, torch.Tensor) else float(t)
    live = a > 0
    inf = torch.full((), math.inf, dtype=a.dtype, device=a.device)  # a fill, not a host-to-device copy
    zero = torch.zeros((), dtype=a.dtype, device=a.device)
    lo = torch.where(live, tv / a, inf)
    hi = torch.where(live, (1 + tv) / a, inf)
    pos, order = torch.cat([lo, hi], dim=1).sort(dim=1, stable=True)
    # slope and offset of Σφ change by (+a, −t) at lo and (−a, +1+t) at hi; dead groups change nothing
    slope = torch.cat([torch.where(live, a, zero), torch.where(live, -a, zero)], dim=1)
    slope = slope.gather(1, order).cumsum(1)
    offset = torch.cat([torch.where(live, -tv, zero), torch.where(live, tv + 1, zero)], dim=1)
    offset = offset.gather(1, order).cumsum(1)
    finite = torch.isfinite(pos)
    g = torch.where(finite, slope * torch.where(finite, pos, zero) + offset, inf)  # Σφ at each event (h + k)
    n = 2 * m
    tol = 1e-12 * k.clamp(min=1.0)
    i = torch.searchsorted(g, (k - tol).unsqueeze(1)).clamp(1, n - 1)  # (B, 1)
    nxt = (i + 1).clamp(max=n - 1)
    s_prev, o_prev = slope.gather(1, i - 1), offset.gather(1, i - 1)
    p_prev, p_i, p_nxt = pos.gather(1, i - 1), pos.gather(1, i), pos.gather(1, nxt)
    kk = k.unsqueeze(1)
    flat_before = s_prev <= 1e-300 * torch.clamp(o_prev.abs(), min=1.0)
    eta = torch.minimum(torch.maximum((kk - o_prev) / torch.where(flat_before, 1.0, s_prev), p_prev), p_i)
    eta = torch.where(flat_before, p_i, eta)
    # an exactly-k flat piece starting at pos[i]: move to its middle so no group sits on a breakpoint
    flat_at_k = (
        ((g.gather(1, i) - kk).abs() <= tol.unsqueeze(1))
        & (i + 1 < n)
        & (slope.gather(1, i) <= 1e-300)
        & torch.isfinite(p_nxt)
    )
    eta = torch.where(flat_at_k, 0.5 * (p_i + p_nxt), eta)
    found = live.sum(1) > k
    return torch.where(found, eta[:, 0], zero), found


def root_bisect(a: torch.Tensor, t: Shift, k: float, iters: int = 60) -> float:
    """Solve h(η) = 0 by bisection on [min lo, max hi], then exactly on the final linear piece (same contract)."""
    a = a.double().reshape(-1)
    tv = _as_vec(t, a).double().reshape(-1)
    keep = a > 0
    a, tv = _take(a, keep), _take(tv, keep)
    left, right = float((tv / a).min()), float(((1 + tv) / a).max())
    for _ in range(iters):
        mid = 0.5 * (left + right)
        if h_value(a, tv, k, mid) >= 0:
            right = mid
        else:
            left = mid
    return _affine_finish(a, tv, k, left, right)


def _affine_finish(a: torch.Tensor, tv: torch.Tensor, k: float, left: float, right: float) -> float:
    """Exact root once [left, right] brackets it: solve on the sub-pieces cut by breakpoints inside."""
    lo, hi = tv / a, (1 + tv) / a
    inner = torch.cat([lo, hi])
    inner = _take(inner, (inner > left) & (inner < right)).sort().values
    knots = [left, *inner.tolist(), right]
    for x0, x1 in itertools.pairwise(knots):
        h1 = h_value(a, tv, k, x1)
        if h1 >= 0:
            h0 = h_value(a, tv, k, x0)
            if h1 - h0 <= 0:
                return 0.5 * (x0 + x1)
            return x0 + (x1 - x0) * (-h0) / (h1 - h0)
    return right


@dataclass
class _Bracket:
    """[left, right] holds the root; groups whose breakpoints all lie outside it contribute the affine
    ones + slope·η − offset to Σφ there (the accumulators)."""

    left: float = 0.0
    right: float = math.inf
    ones: float = 0.0
    slope: float = 0.0
    offset: float = 0.0

    def fixed_part(self, eta: float | torch.Tensor) -> float | torch.Tensor:
        return self.ones + self.slope * eta - self.offset

    def absorb(self, a: torch.Tensor, tv: Shift) -> tuple[torch.Tensor, Shift]:
        """Move groups with no breakpoint inside (left, right) into the accumulators; return the rest."""
        # breakpoints computed exactly as in `_median_step`, so a group kept here has a candidate there
        lo, hi = tv / a, (1 + tv) / a
        ones = hi <= self.left
        zeros = lo >= self.right
        linear = (lo <= self.left) & (hi >= self.right)
        self.ones += float(torch.count_nonzero(ones))
        n_lin = int(torch.count_nonzero(linear))
        if n_lin:
            self.slope += float(torch.where(linear, a, 0).sum(dtype=torch.float64))
            if isinstance(tv, torch.Tensor):
                self.offset += float(torch.where(linear, tv, 0).sum(dtype=torch.float64))
            else:
                self.offset += tv * n_lin
        rest = ~(ones | zeros | linear)
        return _take(a, rest), (_take(tv, rest) if isinstance(tv, torch.Tensor) else tv)

    def h(self, a: torch.Tensor, tv: Shift, k: float, eta: float) -> float:
        """h(η) for η in the bracket, given the groups not yet absorbed."""
        if not math.isfinite(eta):
            return math.inf
        return float(self.fixed_part(eta)) + float(torch.clamp(a * eta - tv, 0, 1).sum()) - k

    def solve(self, k: float) -> float:
        """Root of the affine function left when no group is active."""
        if self.slope > 0:
            eta = (k - self.ones + self.offset) / self.slope
            return min(max(eta, self.left), self.right)
        # flat exactly-k piece: any point inside gives the same prox; the middle keeps clear of breakpoints
        return 0.5 * (self.left + self.right) if math.isfinite(self.right) else self.left


def _sample_bracket(
    a: torch.Tensor, t: Shift, k: float, br: _Bracket, size: int = _SAMPLE
) -> tuple[float, float]:
    """A narrow sub-bracket of `br` that holds the root with high probability, from a strided sample of about
    `size` of the active groups (sweep of the sample scaled up, ± 4 standard deviations of the sampled count).
    A large sample is first classified against `br` (as the full pass would be), so only its groups with a
    breakpoint inside `br` are sorted. Only a guess: the caller checks it and falls back to a wider bracket."""
    n = a.numel()
    step = max(1, n // size)
    sa = a[::step]
    st = t[::step] if isinstance(t, torch.Tensor) else t
    scale = n / sa.numel()
    sbr = _Bracket(left=br.left, right=br.right)  # the sample's own accumulators
    total = sa.numel()
    if total > 4 * _SAMPLE and math.isfinite(br.right):  # a contiguous copy: strided chunks are slow
        sa, st = _classify_into(sa.contiguous(), st.contiguous() if isinstance(st, torch.Tensor) else st, sbr)
    sa = sa.double()
    st = _as_vec(st, sa).double()
    keep = sa > 0
    sa, st = _take(sa, keep), _take(st, keep)
    if sa.numel() == 0:
        return br.left, br.right
    thin = math.ceil(sa.numel() / _SORT_MAX)  # a misleading first bracket must not make this sort O(m log m)
    if thin > 1:
        sa, st = sa[::thin], st[::thin]
    pos, order = torch.cat([st / sa, (1 + st) / sa]).sort()
    slope = torch.cat([sa, -sa]).index_select(0, order).cumsum(0)
    offset = torch.cat([-st, st + 1]).index_select(0, order).cumsum(0)
    sampled = slope * pos + offset  # Σφ over the sampled groups left active, at each event
    inside = (pos >= br.left) & (pos <= br.right)  # the accumulators are exact only there
    pos, sampled = pos[inside], sampled[inside]
    if pos.numel() == 0:
        return br.left, br.right
    est = br.fixed_part(pos) + scale * (sbr.fixed_part(pos) + thin * sampled)  # estimated Σφ, nondecreasing
    guess = _crossing(pos, est, k, br.left)
    # the sampled count near the root sets the sampling noise (binomial-like: √count)
    count = float(sbr.fixed_part(guess)) + thin * float(torch.clamp(sa * guess - st, 0, 1).sum())
    delta = scale * (4.0 * math.sqrt(max(0.0, min(count, total - count)) + 1.0) + 2.0)
    left = _crossing(pos, est, k - delta, br.left)
    right = _crossing(pos, est, k + delta, br.right)
    return max(br.left, left), min(br.right, right)


def _crossing(pos: torch.Tensor, est: torch.Tensor, target: float, default: float) -> float:
    """η where the piecewise-linear interpolation of (pos, est) reaches target (default when off either end)."""
    i = int(torch.searchsorted(est, torch.tensor([target], dtype=est.dtype, device=est.device)).item())
    if i == 0 or i >= pos.numel():
        return default
    e0, e1, p0, p1 = float(est[i - 1]), float(est[i]), float(pos[i - 1]), float(pos[i])
    return p1 if e1 <= e0 else p0 + (p1 - p0) * (target - e0) / (e1 - e0)


def _median_step(a: torch.Tensor, tv: Shift, k: float, br: _Bracket) -> None:
    """Cut the bracket at the exact median of the breakpoints inside it (worst-case linear selection)."""
    cand = torch.cat([tv / a, (1 + tv) / a])
    cand = _take(cand, (cand > br.left) & (cand < br.right))
    if cand.numel() <= _SMALL:
        pivot = float(cand.sort().values[cand.numel() // 2])
    else:
        pivot = float(kth_smallest(cand, cand.numel() // 2))
    if br.h(a, tv, k, pivot) >= 0:
        br.right = pivot
    else:
        br.left = pivot


def _bracket_loop(a: torch.Tensor, tv: Shift, k: float, br: _Bracket) -> float:
    """Shrink the bracket until no group has a breakpoint inside it, then solve the affine rest.

    Each round tries a sampled sub-bracket (accepted only if it holds the root and at least halves the active
    groups); otherwise it takes a median step, which halves the breakpoints inside. So O(m) in the worst case.
    """
    keep = a > 0  # an all-zero group never grows (and 0/0 breakpoints would poison the medians)
    a = _take(a, keep)
    if isinstance(tv, torch.Tensor):
        tv = _take(tv, keep)
    a, tv = br.absorb(a, tv)
    while a.numel() > 0:
        if a.numel() > 4 * _SMALL:
            left, right = _sample_bracket(a, tv, k, br)
            trial = replace(br, left=left, right=right)
            ra, rt = trial.absorb(a, tv)
            if ra.numel() <= a.numel() // 2 and trial.h(ra, rt, k, left) <= 0 <= trial.h(ra, rt, k, right):
                br, a, tv = trial, ra, rt
                continue
        _median_step(a, tv, k, br)
        a, tv = br.absorb(a, tv)
    return br.solve(k)


def root_select(a: torch.Tensor, t: Shift, k: float) -> float:
    """Solve h(η) = 0 in worst-case O(m) time (see module doc; same contract as `root_sweep`).

    Args:
        a: (m,) group strengths ≥ 0, float32 or float64 (float32 is only classified, never solved, in float32).
        t: τ·w_j as a float (unit weights: the fast path) or an (m,) tensor.
        k: target count.

    Returns:
        η as a float; math.inf when at most k entries of a are positive (no root: every nonzero group
        saturates, u_j = 1).
    """
    a = a.reshape(-1)
    if isinstance(t, torch.Tensor):
        t = t.reshape(-1)
    n = a.numel()
    if n > 4 * _SAMPLE:  # one classification pass over everything, then work on the few left
        left, right = _sample_bracket(a, t, k, _Bracket())
        tries = [(left, right)]
        if n > _WIDE_FROM and math.isfinite(right):  # a second, larger sample narrows it ~10x for cheap
            tries.insert(0, _sample_bracket(a, t, k, _Bracket(left=left, right=right), size=n // _WIDE_STEP))
        for left, right in tries:
            if not math.isfinite(right):
                continue
            trial = _Bracket(left=left, right=right)
            sub_a, sub_t = _classify_into(a, t, trial)  # in a's dtype: the bulk of the work
            sub_a = sub_a.double()
            sub_t = sub_t.double() if isinstance(sub_t, torch.Tensor) else sub_t
            if trial.h(sub_a, sub_t, k, left) <= 0 <= trial.h(sub_a, sub_t, k, right):
                return _bracket_loop(sub_a, sub_t, k, trial)
    if int(torch.count_nonzero(a)) <= k:
        return math.inf
    return _bracket_loop(a.double(), t.double() if isinstance(t, torch.Tensor) else t, k, _Bracket())


def _classify_into(a: torch.Tensor, t: Shift, br: _Bracket) -> tuple[torch.Tensor, Shift]:
    """Absorb into `br` every group with no breakpoint inside (br.left, br.right), in a's dtype; return the rest."""
    if isinstance(t, torch.Tensor):
        return br.absorb(*classify_shift(a, t, br.right))
    ones, slope, n_lin, rest = classify_unit(a, t, br.left, br.right)
    br.ones += ones
    br.slope += slope
    br.offset += t * n_lin
    return rest, t

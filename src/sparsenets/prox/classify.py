"""The one full pass of `root_select`: classify every group against a bracket [left, right] of the root η.

For η in the bracket a group is either zero (φ = 0), saturated (φ = 1), linear (φ = a·η − t) or "rest" (a
breakpoint inside the bracket). The pass returns the counts and sums of the first three classes (exact: counts
are integers, sums are float64) and the rest as a small tensor. With unit weights the classes are intervals of a,
so the pass is a handful of comparisons per group, run in cache-sized chunks with one host read at the end.
A `torch.compile`d pass was measured at 34 ms against 42 ms eager per 10^7 groups (Inductor's CPU mask stores
are slow; docs/methods/wgsef.md, "Prox speed"), not worth a compile step, so there is none.
"""

from __future__ import annotations

import math

import torch

_CHUNK = 1 << 18  # groups per chunk of the eager pass: temporaries stay small, cached and reused


def unit_classes(
    a: torch.Tensor, th: tuple[float, float, float, float]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class statistics of the groups a against the thresholds th = (zero_to, lin_from, lin_to, sat_from).

    Args:
        a: (n,) group strengths.
        th: 4 thresholds, exactly representable in a's dtype: a ≤ zero_to is zero, lin_from ≤ a ≤ lin_to
            linear, a ≥ sat_from saturated (zero_to < lin_from, lin_to < sat_from).

    Returns:
        n_sat, n_above (a ≥ lin_from), n_below (a ≤ lin_to): 0-d int64; clamped: Σ clamp(a, lin_from, lin_to)
        as a 0-d float64 (the linear class's sum follows from it and the counts); rest: (n,) bool, the groups
        in none of the three classes.
    """
    zero_to, lin_from, lin_to, sat_from = th
    sat = a >= sat_from
    above = a >= lin_from
    below = a <= lin_to
    clamped = a.clamp(lin_from, lin_to).sum(dtype=torch.float64)
    # sat and the linear class are disjoint and both lie inside {a > zero_to}, so xor removes them
    rest = (a > zero_to) ^ sat ^ (above & below)
    # count_nonzero: a bool .sum() is ~1.3x slower on the CPU
    return torch.count_nonzero(sat), torch.count_nonzero(above), torch.count_nonzero(below), clamped, rest


def classify_unit(
    a: torch.Tensor, t: float, left: float, right: float
) -> tuple[float, float, int, torch.Tensor]:
    """Unit weights: classify all groups against [left, right] in one pass over a.

    Thresholds are widened by a few ulps of a's dtype, so a borderline group lands in the rest (handled later in
    float64) rather than in a wrong class.

    Args:
        a: (n,) group strengths (float32 or float64), t: τ ≥ 0, left < right: the bracket (right finite).

    Returns:
        (ones, slope, n_lin, rest): saturated count, Σa over the linear class (float64), the linear count, and
        (r,) the rest of a.
    """
    wide = 8 * torch.finfo(a.dtype).eps
    inf = math.inf
    bounds = (
        t / right * (1 - wide),  # zero up to here
        t / left * (1 + wide) if left > 0 else inf,  # linear from here ...
        (1 + t) / right * (1 - wide),  # ... up to here
        (1 + t) / left * (1 + wide) if left > 0 else inf,  # saturated from here
    )
    # a's dtype is what every comparison runs in; the counts and the clamp must use the same rounded values
    th = tuple(torch.tensor(bounds, dtype=a.dtype).tolist())
    lo_f, hi_f = th[1], th[2]
    parts, rest = [], []
    for ac in a.split(_CHUNK):
        *stats, mask = unit_classes(ac, th)
        parts.append(stats)
        rest.append(ac[mask])  # while the chunk is still in cache
    stats = [torch.stack([p[i] for p in parts]).sum() for i in range(4)]
    rest = torch.cat(rest)
    n_sat, n_above, n_below = torch.stack(stats[:3]).tolist()  # one host read for the counts
    if lo_f > hi_f:  # the linear interval is empty (a wide bracket)
        return float(n_sat), 0.0, 0, rest
    n = a.numel()
    # Σ_lin a from one clamped float64 sum: clamp adds lo_f per group under the interval, hi_f per group over it
    slope = float(stats[3]) - lo_f * (n - n_above) - hi_f * (n - n_below)
    return float(n_sat), slope, n_above + n_below - n, rest


def classify_shift(a: torch.Tensor, t: torch.Tensor, right: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group t: keep the groups that are nonzero somewhere below `right` (t_j/a_j < right), in chunks.

    The others contribute 0 on [0, right], so the problem restricted to the kept ones is exact there; as Σφ = k,
    they are typically a few times k groups. Thresholds are widened by a few ulps as above.

    Args:
        a: (n,) group strengths, t: (n,) shifts τ·w_j ≥ 0, right: the bracket's right end.

    Returns:
        (a_kept, t_kept), both in a's dtype.
    """
    wide = 8 * torch.finfo(a.dtype).eps
    parts = [(ac, tc, tc * (1 - wide) < ac * right) for ac, tc in zip(a.split(_CHUNK), t.split(_CHUNK))]
    return torch.cat([ac[k] for ac, _, k in parts]), torch.cat([tc[k] for _, tc, k in parts]).to(a.dtype)

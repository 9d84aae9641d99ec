"""Module B of Turbo-VBI as pure tensor functions: sum-product on the support prior, all messages in log-odds.

The input is a unary per weight, u_n = logit π^e_n (Module A's extrinsic message); the output is the prior
log-odds logit π_n that Module B sends back, with n's own unary excluded (extrinsic), unless a caller asks for the
demo's marginals. Transition table of a support chain: p01 = P(s' = 1 | s = 0), p10 = P(s' = 0 | s = 1).
- `chain_prior_logodds`: exact forward–backward along the last dim, as log-odds messages.
- `grid_prior_logodds`: damped loopy BP (flooding) on a 4-neighbour grid, vectorised over the whole grid.
- `support_prior_logodds`: the per-layer dispatch on `support` ∈ {"mrf2d", "chain", "iid", "flat"}.
"""

from __future__ import annotations

import math

import torch

from sparsenets.errors import ConfigError
from sparsenets.turbovbi.prior import check_transition, stationary_logodds

SUPPORTS = ("mrf2d", "chain", "iid", "flat")
VARIANTS = ("extrinsic", "marginal")
_SATURATED = 40.0


def _log_table(p01: float, p10: float, like: torch.Tensor) -> torch.Tensor:
    """(2, 2) log P(s' | s), indexed [s, s'], in `like`'s dtype and device."""
    check_transition(p01, p10)
    table = [[1 - p01, p01], [p10, 1 - p10]]
    return torch.tensor(table, dtype=like.dtype, device=like.device).log()


def _message_terms(log_p: torch.Tensor, along: bool, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Constants (c, d), each [2, 1, ...] (ndim ones), of a message in log-odds: log m(1), log m(0) =
    logaddexp(c, d + h) with h the sender's cavity log-odds.

    along the chain direction: m(s') ∝ Σ_s P(s'|s) e^{h·s}; against it (transposed table): m(s) ∝ Σ_{s'} P(s'|s)
    e^{h·s'}. Row 0 of c, d belongs to m(1), row 1 to m(0).
    """
    c, d = (log_p[0], log_p[1]) if along else (log_p[:, 0], log_p[:, 1])
    shape = (2,) + (1,) * ndim
    return c.flip(0).reshape(shape), d.flip(0).reshape(shape)


def _message(terms: tuple[torch.Tensor, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """Log-odds of one message given the sender's cavity log-odds h (any shape, matching `terms`' ndim)."""
    c, d = terms
    # past ±40 nats the message has saturated to machine precision; clamping keeps float32 from cancelling
    both = torch.logaddexp(c, d + h.clamp(-_SATURATED, _SATURATED))
    return both[0] - both[1]


def chain_prior_logodds(
    unary: torch.Tensor, p01: float, p10: float, start_logodds: float | None = None
) -> torch.Tensor:
    """Exact B→A prior log-odds on a Markov chain along the last dim; unary [..., N] → [..., N], batched.

    p(s) = p(s_1) Π_j P(s_{j+1} | s_j) with p(s_1 = 1) = λ = p01/(p01+p10) (stationary start), or
    sigmoid(start_logodds) when given (0.0 is the unnormalised-MRF chain, as on a 1×N grid). Output n is
    log p(s_n = 1 | u_{-n}) − log p(s_n = 0 | u_{-n}), the chain posterior with node n's own unary left out:
    forward message + backward message, log-odds recursions over positions run together and vectorised over
    all chains (on the CPU several times faster than a log-depth 2×2 scan, which does O(N log N) work).
    """
    n = unary.shape[-1]
    if n == 0:
        return unary.clone()
    log_p = _log_table(p01, p10, unary)
    start = stationary_logodds(p01, p10) if start_logodds is None else float(start_logodds)
    # both sweeps in one loop: direction 0 runs forward over u, direction 1 forward over u reversed (backward)
    u = unary.movedim(-1, 0)
    both_u = torch.stack([u, u.flip(0)], dim=1).contiguous()  # [N, 2, ...]: one contiguous slice per step
    along, against = (_message_terms(log_p, flag, unary.dim()) for flag in (True, False))
    terms = (torch.cat([along[0], against[0]], dim=1), torch.cat([along[1], against[1]], dim=1))
    msgs = torch.empty_like(both_u)
    msgs[0, 0], msgs[0, 1] = start, 0.0  # α_1 = the start, β_N = uniform
    for j in range(n - 1):  # α_{j+1} from α_j, φ_j; β_{N-j-1} from β_{N-j}, φ_{N-j}
        msgs[j + 1] = _message(terms, msgs[j] + both_u[j])
    return (msgs[:, 0] + msgs[:, 1].flip(0)).movedim(0, -1)


def _check_bp_options(sweeps: int, damping: float, variant: str) -> None:
    if not (isinstance(sweeps, int) and sweeps >= 0):
        raise ConfigError(f"sweeps={sweeps!r} must be an integer ≥ 0 (BP sweeps over the grid)")
    if not (0.0 <= damping < 1.0):
        raise ConfigError(f"damping={damping!r} must lie in [0, 1) (share of the old message kept per sweep)")
    if variant not in VARIANTS:
        raise ConfigError(f"variant={variant!r} is unknown: use one of {VARIANTS}")


def grid_prior_logodds(
    unary: torch.Tensor,
    p01_row: float,
    p10_row: float,
    p01_col: float,
    p10_col: float,
    sweeps: int = 10,
    damping: float = 0.5,
    *,
    variant: str = "extrinsic",
    clip: float | None = 10.0,
) -> torch.Tensor:
    """Damped loopy BP (flooding) on the 4-neighbour grid MRF; unary [H, W] (log-odds) → [H, W] (log-odds).

    p(s) ∝ Π ψ_row(s_{i,j}, s_{i,j+1}) Π ψ_col(s_{i,j}, s_{i+1,j}) with ψ(s, s') = P(s'|s) of the row / column
    chain (no start factor). Each sweep recomputes all four message fields from the previous ones and keeps a
    `damping` share of the old log-odds. Unaries, messages and the result are clipped to ±`clip` (None: off).
    variant "extrinsic": returns Σ_{t∈N(n)} m_{t→n} (own unary excluded), the B→A prior logit π_n.
    variant "marginal" (the demo's): returns the full belief u_n + Σ_t m_{t→n}; the demo feeds it unaries
    logit π̃ + logit π (`prior.marginal_unary_logodds`) and uses the result directly as the next prior π.
    On a tree (1×N or N×1) with damping 0 and sweeps ≥ N − 1 the result is exact.
    """
    _check_bp_options(sweeps, damping, variant)
    if unary.dim() != 2:
        raise ConfigError(f"grid BP needs a 2-D unary grid [H, W], got shape {tuple(unary.shape)}")
    row, col = _log_table(p01_row, p10_row, unary), _log_table(p01_col, p10_col, unary)
    row_with, row_against = _message_terms(row, True, 2), _message_terms(row, False, 2)
    col_with, col_against = _message_terms(col, True, 2), _message_terms(col, False, 2)
    u = unary if clip is None else unary.clamp(-clip, clip)
    # from_left[i, j] is the message (i, j-1) → (i, j); zero log-odds (uniform) where there is no neighbour
    from_left, from_right, from_up, from_down = (torch.zeros_like(u) for _ in range(4))
    inner, head, tail = slice(None), slice(1, None), slice(None, -1)
    for _ in range(sweeps):
        belief = u + from_left + from_right + from_up + from_down
        updates = (  # (field, the slice of receivers, the new message from each sender's cavity)
            (from_left, (inner, head), _message(row_with, belief[:, :-1] - from_right[:, :-1])),
            (from_right, (inner, tail), _message(row_against, belief[:, 1:] - from_left[:, 1:])),
            (from_up, (head, inner), _message(col_with, belief[:-1, :] - from_down[:-1, :])),
            (from_down, (tail, inner), _message(col_against, belief[1:, :] - from_up[1:, :])),
        )
        for field, where, new in updates:  # all new messages exist before any field changes (flooding)
            view = field[where]
            view.mul_(damping).add_(new, alpha=1 - damping)
            if clip is not None:
                view.clamp_(-clip, clip)
    incoming = from_left + from_right + from_up + from_down
    out = incoming if variant == "extrinsic" else u + incoming
    return out if clip is None else out.clamp(-clip, clip)


def _pair(p: float | tuple[float, float]) -> tuple[float, float]:
    """(row, column) value from one float (both the same) or a pair."""
    if isinstance(p, tuple | list):
        if len(p) != 2:
            raise ConfigError(f"a transition probability is one float or a (row, column) pair, got {p!r}")
        return float(p[0]), float(p[1])
    return float(p), float(p)


def support_prior_logodds(
    unary_grid: torch.Tensor,
    support: str,
    p01: float | tuple[float, float],
    p10: float | tuple[float, float],
    sweeps: int = 10,
    damping: float = 0.5,
    *,
    variant: str = "extrinsic",
    clip: float | None = 10.0,
) -> torch.Tensor:
    """B→A prior log-odds for one layer's support grid; unary_grid [H, W] (logit π^e) → [H, W] (logit π).

    support "mrf2d": `grid_prior_logodds` (p01, p10 one float for rows and columns, or (row, column) pairs);
    "chain": exact forward–backward down each column of G (one chain per output neuron, stationary start;
    the column value of a pair); "iid": logit λ everywhere (λ = p01/(p01+p10), no coupling); "flat": 0 (π = ½).
    variant "marginal" adds the own unary back, for every support (see `grid_prior_logodds`).
    """
    if support not in SUPPORTS:
        raise ConfigError(f"support={support!r} is unknown: use one of {SUPPORTS}")
    if unary_grid.dim() != 2:
        raise ConfigError(f"support BP needs a 2-D support grid [H, W], got shape {tuple(unary_grid.shape)}")
    (p01_row, p01_col), (p10_row, p10_col) = _pair(p01), _pair(p10)
    if support == "mrf2d":
        return grid_prior_logodds(
            unary_grid, p01_row, p10_row, p01_col, p10_col, sweeps, damping, variant=variant, clip=clip
        )
    _check_bp_options(sweeps, damping, variant)
    if support == "chain":
        out = chain_prior_logodds(unary_grid.t(), p01_col, p10_col).t()
    else:  # no coupling: the prior is the same everywhere and ignores the unaries
        out = torch.full_like(unary_grid, stationary_logodds(p01_col, p10_col) if support == "iid" else 0.0)
    if variant == "marginal":
        out = out + unary_grid
    return out if clip is None else out.clamp(-clip, clip)


def ising_coupling(p01: float, p10: float) -> float:
    """J = ¼ ln[(1−p01)(1−p10)/(p01 p10)], the Ising coupling of the table (> 0: neighbours agree)."""
    check_transition(p01, p10)
    return 0.25 * math.log((1 - p01) * (1 - p10) / (p01 * p10))

"""Turbo-VBI on sparse linear regression y = A x + e: the closed-form testbed of the method's sanity checks.

Model: e ~ N(0, I/κ) with known noise precision κ; x_n | ρ_n ~ N(0, 1/ρ_n); ρ_n | s_n from the Gamma tables;
s from the support prior (a Markov chain along n, i.i.d., or flat). Module A is exact mean-field VBI:
q(x) = N(μ, Σ) with Σ = (κAᵀA + diag E[ρ])⁻¹, μ = κΣAᵀy (full covariance), then the ρ- and s-steps of
`prior.py`; Module B is `bp.chain_prior_logodds`. Every tensor may carry leading batch dims (independent
problems solved together): A [..., M, N], y [..., M], κ a float or [...].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from sparsenets.errors import ConfigError
from sparsenets.turbovbi.bp import chain_prior_logodds
from sparsenets.turbovbi.prior import (
    GammaTables,
    check_finite,
    check_transition,
    expected_log_rho,
    expected_rho,
    extrinsic_logodds,
    gamma_log_density_mean,
    rho_step,
    s_logodds,
    stationary_logodds,
)

REGRESSION_SUPPORTS = ("chain", "iid", "flat", "ard")


@dataclass
class GaussianPosterior:
    """q(x) = N(μ, Σ) of one x-step: mu, sigma_diag [..., N]; logdet_sigma, trace_ata_sigma (tr AᵀAΣ) [...]."""

    mu: torch.Tensor
    sigma_diag: torch.Tensor
    logdet_sigma: torch.Tensor
    trace_ata_sigma: torch.Tensor


@dataclass
class RegressionResult:
    """Final q of `vbi_regression`: mu, Sigma_diag, pi_tilde, prior_logodds (B's logit π), a_tilde, b_tilde, all
    [..., N]; elbo: the ELBO summed over the batch after each x, ρ and s step (3·iters floats, empty when not
    tracked); elbo_trace [3·iters, ...]: the same per problem."""

    mu: torch.Tensor
    Sigma_diag: torch.Tensor
    pi_tilde: torch.Tensor
    prior_logodds: torch.Tensor
    a_tilde: torch.Tensor
    b_tilde: torch.Tensor
    elbo: list[float] = field(default_factory=list)
    elbo_trace: torch.Tensor | None = None


def gaussian_posterior(
    A: torch.Tensor,
    y: torch.Tensor,
    kappa: torch.Tensor,
    prior_precision: torch.Tensor,
) -> GaussianPosterior:
    """The x-step: Σ = (κAᵀA + diag d)⁻¹, μ = κΣAᵀy; A [..., M, N], y [..., M], kappa [...], d [..., N].

    With M < N it solves the M×M system K = I/κ + A D⁻¹Aᵀ (Woodbury; determinant lemma for ln|Σ|), else the
    N×N precision directly; both by Cholesky, in float64 (in float32 K is not numerically positive definite once
    E[ρ] of the inactive weights reaches ~1e4), returned in A's dtype.
    """
    if A.dtype != torch.float64:
        q = gaussian_posterior(*(t.to(torch.float64) for t in (A, y, kappa, prior_precision)))
        return GaussianPosterior(
            *(t.to(A.dtype) for t in (q.mu, q.sigma_diag, q.logdet_sigma, q.trace_ata_sigma))
        )
    m, n = A.shape[-2], A.shape[-1]
    kappa = kappa[..., None]
    aty = (A.transpose(-2, -1) @ y[..., None])[..., 0]
    if m < n:
        d_inv = 1.0 / prior_precision
        eye = torch.eye(m, dtype=A.dtype, device=A.device)
        p_mat = (A * d_inv[..., None, :]) @ A.transpose(-2, -1)  # A D⁻¹ Aᵀ
        k = eye / kappa[..., None] + p_mat
        chol = torch.linalg.cholesky(k)
        k_inv = torch.cholesky_inverse(
            chol
        )  # M×M, cheap next to the M×N products (batched matmuls are fastest)
        sigma_diag = d_inv - d_inv**2 * (A * (k_inv @ A)).sum(-2)
        v = d_inv * aty
        w = (k_inv @ (A @ v[..., None]))[..., 0]  # K⁻¹ A D⁻¹ Aᵀy
        mu = kappa * (v - d_inv * (A.transpose(-2, -1) @ w[..., None])[..., 0])
        logdet_k = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logdet_sigma = -(torch.log(prior_precision).sum(-1) + m * torch.log(kappa[..., 0]) + logdet_k)
        # A Σ Aᵀ = K⁻¹ A D⁻¹ Aᵀ / κ: a trace without the cancellation of (M − tr K⁻¹/κ)/κ at large κ
        trace = (k_inv * p_mat).sum((-2, -1)) / kappa[..., 0]
        return GaussianPosterior(mu, sigma_diag, logdet_sigma, trace)
    ata = A.transpose(-2, -1) @ A
    precision = kappa[..., None] * ata + torch.diag_embed(prior_precision)
    chol = torch.linalg.cholesky(precision)
    sigma = torch.cholesky_inverse(chol)
    mu = kappa * (sigma @ aty[..., None])[..., 0]
    logdet_sigma = -2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    trace = (ata * sigma).sum((-2, -1))
    return GaussianPosterior(mu, torch.diagonal(sigma, dim1=-2, dim2=-1), logdet_sigma, trace)


def _bernoulli_entropy(logodds: torch.Tensor) -> torch.Tensor:
    """H of Bernoulli(sigmoid(ℓ)), stable for large |ℓ|: −p ln p − (1−p) ln(1−p)."""
    p = torch.sigmoid(logodds)
    return -(p * torch.nn.functional.logsigmoid(logodds) + (1 - p) * torch.nn.functional.logsigmoid(-logodds))


def regression_elbo(
    A: torch.Tensor,
    y: torch.Tensor,
    kappa: torch.Tensor,
    q_x: GaussianPosterior,
    a_t: torch.Tensor,
    b_t: torch.Tensor,
    post_logodds: torch.Tensor,
    prior_logodds: torch.Tensor,
    t: GammaTables,
) -> torch.Tensor:
    """Exact ELBO of the current q(x) q(ρ) q(s) under Module A's model (B's prior π as a pseudo-prior) → [...].

    E[ln p(y|x) + ln p(x|ρ) + ln p(ρ|s) + ln p(s; π)] + H[q(x)] + H[q(ρ)] + H[q(s)]; shapes as in
    `gaussian_posterior`, per-weight tensors [..., N], logit π̃ = post_logodds.
    """
    m, n = A.shape[-2], A.shape[-1]
    resid = y - (A @ q_x.mu[..., None])[..., 0]
    loglik = 0.5 * m * torch.log(kappa / (2 * math.pi)) - 0.5 * kappa * (
        (resid * resid).sum(-1) + q_x.trace_ata_sigma
    )
    e_rho, e_log = expected_rho(a_t, b_t), expected_log_rho(a_t, b_t)
    m2 = q_x.mu**2 + q_x.sigma_diag
    log_px = 0.5 * (e_log - math.log(2 * math.pi)) - 0.5 * e_rho * m2
    pi_t = torch.sigmoid(post_logodds)
    log_prho = pi_t * gamma_log_density_mean(t.a, t.b, e_rho, e_log) + (1 - pi_t) * gamma_log_density_mean(
        t.a_bar, t.b_bar, e_rho, e_log
    )
    logsig = torch.nn.functional.logsigmoid
    log_ps = pi_t * logsig(prior_logodds) + (1 - pi_t) * logsig(-prior_logodds)
    h_x = 0.5 * (n * math.log(2 * math.pi * math.e) + q_x.logdet_sigma)
    h_rho = a_t - torch.log(b_t) + torch.lgamma(a_t) + (1 - a_t) * torch.digamma(a_t)
    per_weight = log_px + log_prho + log_ps + h_rho + _bernoulli_entropy(post_logodds)
    return loglik + h_x + per_weight.sum(-1)


def _initial_prior(support: str, p01: float, p10: float, like: torch.Tensor) -> torch.Tensor:
    """B's starting logit π: logit λ for "chain" (the chain's marginal) and "iid", 0 (π = ½) for "flat"/"ard"."""
    if support in ("chain", "iid"):
        check_transition(p01, p10)
        return torch.full_like(like, stationary_logodds(p01, p10))
    return torch.zeros_like(like)


def vbi_regression(
    A: torch.Tensor,
    y: torch.Tensor,
    noise_precision: float | torch.Tensor,
    support: str = "chain",
    p01: float = 0.02,
    p10: float = 0.1,
    tables: GammaTables | None = None,
    init_rho: float = 100.0,
    init_pi: float = 0.1,
    iters: int = 100,
    *,
    constants: str = "real",
    track_elbo: bool = True,
) -> RegressionResult:
    """Turbo-VBI for y = Ax + e; A [..., M, N], y [..., M], noise_precision κ (float or [...]) → RegressionResult.

    Each iteration: x-step, ρ-step, s-step (ELBO after each), then Module B turns the extrinsic log-odds
    logit π̃ − logit π into the next prior π. support "chain": exact forward–backward along n (stationary start);
    "iid": π = λ = p01/(p01+p10) fixed (spike-and-slab VBI); "flat": π = ½ fixed; "ard": B off and ā, b̄ set
    to a, b, so s has no effect (Gaussian–Gamma ARD/SBL). Start: q(s = 1) = init_pi, q(ρ) the ρ-step's shape ã
    with E[ρ] = init_rho. tables default to the spec's a = b = ā = 1, b̄ = 1e-4.
    """
    if support not in REGRESSION_SUPPORTS:
        raise ConfigError(f"support={support!r} is unknown for regression: use one of {REGRESSION_SUPPORTS}")
    if not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters={iters!r} must be an integer ≥ 1 (Turbo-VBI iterations)")
    if not (init_rho > 0 and 0 < init_pi < 1):
        raise ConfigError(f"init_rho={init_rho!r} must be > 0 and init_pi={init_pi!r} in (0, 1)")
    t = tables if tables is not None else GammaTables(1.0, 1.0, 1.0, 1e-4)
    if support == "ard":
        t = GammaTables(t.a, t.b, t.a, t.b)
    if A.dim() < 2 or tuple(y.shape) != tuple(A.shape[:-1]):
        raise ConfigError(f"A {tuple(A.shape)} and y {tuple(y.shape)} must be [..., M, N] and [..., M]")
    kappa = torch.as_tensor(noise_precision, dtype=A.dtype, device=A.device).expand(A.shape[:-2])
    if not bool(torch.isfinite(kappa).all() and (kappa > 0).all()):
        raise ConfigError("noise_precision must be finite and > 0 (the known 1/σ² of the noise)")
    like = A[..., 0, :]
    prior = _initial_prior(support, p01, p10, like)
    post = torch.full_like(like, math.log(init_pi) - math.log1p(-init_pi))
    a_t, _ = rho_step(torch.zeros_like(like), torch.sigmoid(post), t, constants)
    b_t = a_t / init_rho
    trace: list[torch.Tensor] = []
    for _ in range(iters):
        q_x = gaussian_posterior(A, y, kappa, expected_rho(a_t, b_t))
        check_finite("q(x)", q_x.mu, q_x.sigma_diag)
        if track_elbo:
            trace.append(regression_elbo(A, y, kappa, q_x, a_t, b_t, post, prior, t))
        a_t, b_t = rho_step(q_x.mu**2 + q_x.sigma_diag, torch.sigmoid(post), t, constants)
        if track_elbo:
            trace.append(regression_elbo(A, y, kappa, q_x, a_t, b_t, post, prior, t))
        post = s_logodds(a_t, b_t, prior, t)
        check_finite("q(ρ), q(s)", a_t, b_t, post)
        if track_elbo:
            trace.append(regression_elbo(A, y, kappa, q_x, a_t, b_t, post, prior, t))
        if support == "chain":
            prior = chain_prior_logodds(extrinsic_logodds(post, prior), p01, p10)
    elbo_trace = torch.stack(trace) if trace else None
    elbo = [float(v) for v in elbo_trace.reshape(len(trace), -1).sum(-1)] if elbo_trace is not None else []
    return RegressionResult(
        q_x.mu, q_x.sigma_diag, torch.sigmoid(post), prior, a_t, b_t, elbo=elbo, elbo_trace=elbo_trace
    )


@dataclass
class RegressionProblem:
    """A batch of sparse-regression problems: A [T, M, N], x [T, N], y [T, M], support [T, N] bool,
    noise_precision [T] (known κ)."""

    A: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    support: torch.Tensor
    noise_precision: torch.Tensor


def sample_chain_support(
    trials: int, n: int, p01: float, p10: float, generator: torch.Generator
) -> torch.Tensor:
    """[trials, n] bool supports from the Markov chain, stationary start; sequential in n, batched in trials."""
    check_transition(p01, p10)
    lam = p01 / (p01 + p10)
    u = torch.rand(trials, n, generator=generator)
    s = torch.empty(trials, n, dtype=torch.bool)
    s[:, 0] = u[:, 0] < lam
    for j in range(1, n):  # a Markov chain is sampled position by position
        s[:, j] = torch.where(s[:, j - 1], u[:, j] >= p10, u[:, j] < p01)
    return s


def clustered_support_problem(
    trials: int,
    n: int,
    m: int,
    snr_db: float,
    p01: float,
    p10: float,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> RegressionProblem:
    """The spec's clustered-support testbed: chain support (p01, p10), x_n ~ N(0, 1) on it, A_mn ~ N(0, 1/M),
    known noise variance E‖Ax‖²/M / 10^(SNR/10) = (Nλ/M) / 10^(SNR/10), the SNR of the expected signal power
    (a per-trial SNR is undefined for an empty support); returns T = `trials` problems of size M × N."""
    g = torch.Generator().manual_seed(seed)
    support = sample_chain_support(trials, n, p01, p10, g)
    x = torch.randn(trials, n, generator=g, dtype=dtype) * support
    A = torch.randn(trials, m, n, generator=g, dtype=dtype) / math.sqrt(m)
    noise_var = n * p01 / (p01 + p10) / m / 10 ** (snr_db / 10)
    y = (A @ x[..., None])[..., 0] + torch.randn(trials, m, generator=g, dtype=dtype) * math.sqrt(noise_var)
    return RegressionProblem(A, x, y, support, torch.full((trials,), 1.0 / noise_var, dtype=dtype))


def nmse_db(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """10·log10(‖x̂ − x‖² / ‖x‖²) per problem; [..., N] → [...]."""
    err = ((estimate - truth) ** 2).sum(-1)
    return 10 * torch.log10(err / (truth * truth).sum(-1).clamp_min(1e-30))


def support_errors(estimate: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Hamming distance between two bool supports [..., N] → [...] (float, for averaging)."""
    return (estimate != truth).sum(-1).to(torch.float64)

"""Decoders from the sparse state to any query point X_q of the reference space.

Both share one call: `decoder(reference [M, d], positions [M, d], queries [Q, d]) -> [Q, d]`, the sparse
particles' reference coordinates X_i and current positions x_i(t), and the query points' reference coordinates;
the result is X_q + u(X_q), the displacement field u = x − X carried from the sparse points to the queries.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.giorom.config import Bounds, DecoderConfig, validate_bounds
from sparsenets.giorom.features import require_finite

QUERY_BLOCK = 8192  # queries decoded together (cache-sized intermediates)


def require_inside(points: torch.Tensor, low: torch.Tensor, high: torch.Tensor, what: str) -> None:
    """Raise SparsenetsError if any of `points` [K, d] lies outside the box [low, high] ([d] each)."""
    outside = int(((points < low) | (points > high)).any(-1).sum())
    if outside:
        raise SparsenetsError(
            f"{outside} {what} lie outside the decoder's reference box {low.tolist()}..{high.tolist()}; "
            "query inside it or build the decoder with wider bounds"
        )


def require_points(points: torch.Tensor, dim: int | None, what: str, count: int | None = None) -> None:
    """Raise SparsenetsError unless `points` is [K, dim] (any width for dim None; K == `count` where given)."""
    wrong_dim = dim is not None and points.dim() == 2 and points.shape[1] != dim
    if points.dim() != 2 or wrong_dim or (count is not None and points.shape[0] != count):
        want = f"[{count if count is not None else 'K'}, {dim if dim is not None else 'd'}]"
        raise SparsenetsError(f"{what} must be {want}, got {tuple(points.shape)}")


def blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """[n, n] Gaussian blur along one grid axis, std `sigma` grid cells, cut at 3σ (zero padding at the ends)."""
    offset = torch.arange(n, dtype=torch.float32)[:, None] - torch.arange(n, dtype=torch.float32)[None, :]
    return torch.exp(-0.5 * (offset / sigma) ** 2) * (offset.abs() <= max(1.0, math.ceil(3 * sigma)))


class KernelDecoder(nn.Module):
    """The v3 kernel decoder, predicting displacements: splat [f, 1, u] to a grid in reference space, read at
    X_q multilinearly, Shepard-normalise (divide by the splatted 1), then u = ū + MLP([f̄, c, ū, PE(X_q)]).

    f_i = act(Linear(u_i / scale)); c is 1 where the read point is covered (density > min_density, else the
    Shepard means and c are 0); the MLP sees displacements in units of `scale` and its last layer starts at zero,
    so an untrained decoder is the grid Shepard estimate. Cost: O(M·2^d) splat, O(G^d) blur, O(Q) read and MLP.
    """

    def __init__(self, cfg: DecoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, g = cfg.dim, cfg.grid
        self.register_buffer("low", torch.tensor([lo for lo, _ in cfg.bounds]))
        self.register_buffer("high", torch.tensor([hi for _, hi in cfg.bounds]))
        self.register_buffer("blur", blur_matrix(g, cfg.smoothing) if cfg.smoothing > 0 else torch.eye(1))
        self.register_buffer("corners", torch.tensor(list(itertools.product((0, 1), repeat=d))))
        self.register_buffer("strides", torch.tensor([g ** (d - 1 - k) for k in range(d)]))
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(cfg.pe_levels, dtype=torch.float32))
        self.act = F.gelu if cfg.activation == "gelu" else F.relu
        self.feature = nn.Linear(d, cfg.features)
        self.n_read = cfg.features + 1 + d  # channels on the grid: [f, 1, u / scale]
        self.first = nn.Linear(self.n_read + 2 * d * cfg.pe_levels, cfg.hidden)
        self.second = nn.Linear(cfg.hidden, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, d)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _cells(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat grid indices [K, 2^d] of the corners around x [K, d] and their multilinear weights [K, 2^d]
        (the splat's; reads use `grid_sample`, with the same weights)."""
        s = (x - self.low) / (self.high - self.low) * (self.cfg.grid - 1)
        base = s.floor().clamp(0, self.cfg.grid - 2)
        frac = s - base
        idx = ((base.long()[:, None, :] + self.corners) * self.strides).sum(-1)
        w = torch.where(self.corners.bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)
        return idx, w

    def _smooth(self, grid: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur of a [G^d, C] grid: one [G, G] matrix product per axis (BLAS, not a conv)."""
        if self.cfg.smoothing <= 0:
            return grid
        d, g = self.cfg.dim, self.cfg.grid
        vol = grid.reshape(*([g] * d), grid.shape[1])
        for axis in range(d):
            vol = torch.tensordot(self.blur, vol, dims=([1], [axis])).movedim(0, axis)
        return vol.reshape(grid.shape)

    def _where(self, queries: torch.Tensor) -> torch.Tensor:
        """`grid_sample`'s sampling grid [1, (1,)* Q, d] for queries [Q, d]: [-1, 1] spans the corner points and
        coordinates come last axis first."""
        d = self.cfg.dim
        unit = 2 * (queries - self.low) / (self.high - self.low) - 1
        return unit.flip(-1).reshape(1, *([1] * (d - 1)), -1, d)

    def _read(
        self, grid: torch.Tensor, queries: torch.Tensor, where: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Multilinear read of a [G^d, C] grid at queries [Q, d]: [Q, C], with torch's fused `grid_sample`
        (`where`: the queries' precomputed `_where`)."""
        d, g, c = self.cfg.dim, self.cfg.grid, grid.shape[1]
        vol = grid.T.reshape(1, c, *([g] * d))
        where = self._where(queries) if where is None else where
        out = F.grid_sample(vol, where, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out.reshape(c, -1).T

    def _splat_cells(
        self, idx: torch.Tensor, w: torch.Tensor, reference: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        u = (positions - reference) / self.cfg.scale
        values = torch.cat([self.act(self.feature(u)), torch.ones_like(u[:, :1]), u], dim=-1)
        grid = torch.zeros(self.cfg.grid**self.cfg.dim, self.n_read, dtype=u.dtype, device=u.device)
        grid.index_add_(0, idx.flatten(), (w[..., None] * values[:, None, :]).flatten(0, 1))
        return self._smooth(grid)

    def splat(self, reference: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The smoothed grid [G^d, features + 1 + d] of [f, 1, u / scale] splatted from the sparse points."""
        return self._splat_cells(*self._cells(reference), reference, positions)

    def shepard(
        self, grid: torch.Tensor, queries: torch.Tensor, where: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[Q, features + 1 + d] Shepard means [f̄, c, ū / scale] of a splatted grid at the queries (all 0 where
        not covered)."""
        read = self._read(grid, queries, where)
        density = read[:, self.cfg.features : self.cfg.features + 1]
        covered = density > self.cfg.min_density
        inv = torch.where(covered, 1.0 / density.clamp_min(self.cfg.min_density), torch.zeros_like(density))
        return read * inv

    def encode_queries(self, queries: torch.Tensor) -> torch.Tensor | None:
        """[Q, 2·d·pe_levels] the queries' positional encoding [sin | cos] of X_q at 2^k·π (None without one)."""
        if not self.cfg.pe_levels:
            return None
        unit = (queries - self.low) / (self.high - self.low)
        angles = (unit[:, None, :] * self.freqs[:, None]).flatten(1)  # [Q, L·d]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    def query_term(self, pe: torch.Tensor | None) -> torch.Tensor:
        """The first layer's part that depends on the query alone: bias + PE(X_q) W_peᵀ, [Q, hidden] (the bias
        [hidden], broadcast, without an encoding)."""
        if pe is None:
            return self.first.bias
        return torch.addmm(self.first.bias, pe, self.first.weight[:, self.n_read :].T)

    def decode_block(
        self, grid: torch.Tensor, queries: torch.Tensor, where: torch.Tensor, term: torch.Tensor
    ) -> torch.Tensor:
        """[Q, d] positions at one block of queries [Q, d] from a splatted grid, given the block's `_where` and
        `query_term`: u = ū + MLP(...), returned as X_q + scale·u."""
        mean = self.shepard(grid, queries, where)
        # the first layer as a sum of products: no [Q, inputs] concatenation
        h = torch.addmm(term, mean, self.first.weight[:, : self.n_read].T)
        h = self.act(self.second(self.act(h)))
        return queries + self.cfg.scale * (mean[:, self.cfg.features + 1 :] + self.out(h))

    def bind(self, reference: torch.Tensor, queries: torch.Tensor) -> BoundKernelDecoder:
        """This decoder fixed to sparse reference points [M, d] and queries [Q, d] (both constant over a
        rollout): `bound(positions [M, d]) -> [Q, d]`, with the splat cells, read coordinates and positional
        encodings computed once. Checks the points' shapes and the box here."""
        require_points(reference, self.cfg.dim, "sparse reference points")
        require_points(queries, self.cfg.dim, "query points")
        require_inside(reference, self.low, self.high, "sparse reference points")
        require_inside(queries, self.low, self.high, "query points")
        return BoundKernelDecoder(self, reference, queries)

    def forward(
        self, reference: torch.Tensor, positions: torch.Tensor, queries: torch.Tensor
    ) -> torch.Tensor:
        """reference, positions: [M, d] sparse X_i and x_i(t); queries: [Q, d] X_q. Returns [Q, d] x(X_q, t)."""
        return self.bind(reference, queries)(positions)


class BoundKernelDecoder:
    """A `KernelDecoder` fixed to one set of sparse reference points and queries (see `KernelDecoder.bind`).

    It keeps only what the weights do not touch (splat cells, read coordinates, the sin/cos encodings), so it
    follows every weight update and trains as the unbound decoder does. The query term (bias + PE W_peᵀ) is
    recomputed each call: cached, its [Q, hidden] rows made the decoder memory-bound and its time sublinear in Q.
    """

    def __init__(self, decoder: KernelDecoder, reference: torch.Tensor, queries: torch.Tensor) -> None:
        self.decoder, self.reference = decoder, reference
        self.idx, self.w = decoder._cells(reference)
        # blocks of queries keep each block's intermediates in cache: time stays linear in Q
        self.blocks = [(q, decoder._where(q), decoder.encode_queries(q)) for q in queries.split(QUERY_BLOCK)]

    def __call__(self, positions: torch.Tensor) -> torch.Tensor:
        """positions: [M, d] the sparse particles' x_i(t). Returns [Q, d] x(X_q, t)."""
        require_points(positions, self.decoder.cfg.dim, "sparse positions", self.reference.shape[0])
        require_finite(positions, "sparse positions")
        dec = self.decoder
        grid = dec._splat_cells(self.idx, self.w, self.reference, positions)
        return torch.cat(
            [dec.decode_block(grid, q, where, dec.query_term(pe)) for q, where, pe in self.blocks]
        )


class ShepardDecoder(nn.Module):
    """The control: inverse-distance (Shepard) interpolation of u over the k nearest sparse points in reference
    space, weights 1/|X_q − X_i|^power; exact at the sparse points themselves. No parameters.

    Args:
        k: neighbours per query; power: distance exponent; bounds: optional reference box to check queries
            against (None: any query).
    """

    def __init__(self, k: int = 8, power: float = 2.0, bounds: Bounds | None = None) -> None:
        super().__init__()
        if k < 1 or not power > 0:
            raise SparsenetsError(f"ShepardDecoder needs k >= 1 and power > 0, got k={k}, power={power}")
        if bounds is not None:
            validate_bounds(bounds)
        self.k, self.power, self.bounds = k, power, bounds

    def bind(self, reference: torch.Tensor, queries: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """This decoder fixed to sparse reference points [M, d] and queries [Q, d]: neighbours and weights live in
        reference space, so they are found once; `bound(positions [M, d]) -> [Q, d]` is then a gather and a
        weighted sum."""
        require_points(reference, None, "sparse reference points")
        require_points(
            queries, reference.shape[1], "query points (as many coordinates as the reference points)"
        )
        if self.bounds is not None:
            low = torch.tensor([lo for lo, _ in self.bounds], dtype=queries.dtype, device=queries.device)
            high = torch.tensor([hi for _, hi in self.bounds], dtype=queries.dtype, device=queries.device)
            require_inside(queries, low, high, "query points")
        k = min(self.k, reference.shape[0])
        tree = cKDTree(reference.detach().to("cpu", torch.float64).numpy())
        dist, idx = tree.query(queries.detach().to("cpu", torch.float64).numpy(), k=k)
        dist = torch.as_tensor(dist, dtype=torch.float64).reshape(-1, k)  # weights in float64: 1/d^p is huge
        idx = torch.as_tensor(idx, device=queries.device).reshape(-1, k)
        # a query on a sparse point takes that point's value exactly
        hit = dist <= 1e-12 * (1.0 + dist[:, -1:])
        w = torch.where(hit.any(-1, keepdim=True), hit.double(), dist.clamp_min(1e-300) ** -self.power)
        w = (w / w.sum(-1, keepdim=True)).to(queries.device, queries.dtype)

        def bound(positions: torch.Tensor) -> torch.Tensor:
            require_points(positions, reference.shape[1], "sparse positions", reference.shape[0])
            require_finite(positions, "sparse positions")
            u = positions - reference
            return queries + (w[..., None] * u[idx]).sum(1)

        return bound

    def forward(
        self, reference: torch.Tensor, positions: torch.Tensor, queries: torch.Tensor
    ) -> torch.Tensor:
        """reference, positions: [M, d]; queries: [Q, d]. Returns [Q, d] X_q + Σ w_i u_i / Σ w_i."""
        return self.bind(reference, queries)(positions)

"""`SSTLinear`: a linear layer stored as W = U diag(s) Vᵀ that trains all of s and r sampled (u_i, v_i) pairs.

The k = min(in, out) singular vectors live in frozen buffers `U` (out, k) and `V` (in, k); the r active pairs are
copied into small Parameters `U_act` (out, r), `V_act` (in, r), so the optimizer holds state for s, the active
columns and the bias only. The forward materialises W once per call (cost out·in·k, small next to the batch matmul
when tokens per batch exceed k) and then runs one dense matmul, so step time stays close to a dense layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.spectral.base import FactoredLinear


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient of a (n, r) tensor by a per-column factor (r,)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class SSTLinear(FactoredLinear):
    """Sparse Spectral Training layer (drop-in for nn.Linear).

    Args:
        in_features, out_features: as nn.Linear.
        rank: r, the number of singular-vector pairs trained at a time, 1 <= r <= min(in, out).
        bias: learn an additive bias.
        weight: dense init W₀ (out, in) to decompose; None draws nn.Linear's default init.
        bias_init: initial bias (out,); None draws nn.Linear's default.
        enhanced_grad: divide the gradients of the active u_i, v_i by max(s_i, eps), so that small-σ directions
            still move (the paper's enhanced gradient G v_i, Gᵀ u_i).
        normalize: keep the active columns at unit norm after each step (`project_`).
        eps: floor of s_i in the enhanced gradient and of column norms.
    """

    def build(
        self, weight: torch.Tensor, *, enhanced_grad: bool = True, normalize: bool = True, eps: float = 1e-3
    ) -> None:
        """U, s, V from the SVD of `weight` (out, in), in float64; the top r pairs start active."""
        self.enhanced_grad, self.normalize, self.eps = enhanced_grad, normalize, eps
        u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
        dtype, rank = weight.dtype, self.rank
        k = s.shape[0]
        self.register_buffer("U", u.to(dtype).contiguous())  # (out, k); active columns here are stale copies
        self.register_buffer("V", vh.T.to(dtype).contiguous())  # (in, k)
        self.register_buffer("active", torch.arange(rank, device=weight.device))  # slot -> singular index
        self.register_buffer("frozen_mask", torch.ones(k, dtype=dtype, device=weight.device))
        self.frozen_mask[:rank] = 0
        self.s = nn.Parameter(s.to(dtype))
        self.U_act = nn.Parameter(self.U[:, :rank].clone())
        self.V_act = nn.Parameter(self.V[:, :rank].clone())

    @property
    def k(self) -> int:
        """Number of singular triplets, min(in, out)."""
        return self.s.shape[0]

    def compose_weight(self) -> torch.Tensor:
        """The dense weight U diag(s) Vᵀ, shape (out, in), differentiable in s, U_act, V_act (`.weight`)."""
        frozen = (self.U * (self.s * self.frozen_mask)) @ self.V.T
        u_act, v_act = self.U_act, self.V_act
        if self.enhanced_grad and torch.is_grad_enabled():
            # autograd gives s_i · G v_i; the enhanced gradient drops s_i so small-σ directions still learn
            inv = 1.0 / self.s.detach()[self.active].clamp_min(self.eps)
            u_act, v_act = _ScaleGrad.apply(u_act, inv), _ScaleGrad.apply(v_act, inv)
        return frozen + (u_act * self.s[self.active]) @ v_act.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) → (..., out)."""
        return F.linear(x, self.weight, self.bias)

    @torch.no_grad()
    def full_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current (U, V) with the active columns written in: shapes (out, k), (in, k) (copies)."""
        u, v = self.U.clone(), self.V.clone()
        u[:, self.active] = self.U_act
        v[:, self.active] = self.V_act
        return u, v

    @torch.no_grad()
    def set_active(self, indices: torch.Tensor) -> None:
        """Write the active columns back into U, V and load the pairs `indices` (r distinct, int64) instead."""
        if indices.shape != (self.rank,) or torch.unique(indices).numel() != self.rank:
            raise ValueError(f"need {self.rank} distinct indices, got {indices.tolist()}")
        self.U[:, self.active] = self.U_act
        self.V[:, self.active] = self.V_act
        indices = indices.to(self.active.device)
        self.active.copy_(indices)
        self.U_act.copy_(self.U[:, indices])
        self.V_act.copy_(self.V[:, indices])
        self.frozen_mask.fill_(1)
        self.frozen_mask[indices] = 0

    @torch.no_grad()
    def project_(self) -> None:
        """After an optimizer step: clamp s >= 0 and (if `normalize`) renormalise the active columns."""
        self.s.clamp_(min=0)
        if self.normalize:
            self.U_act.div_(self.U_act.norm(dim=0, keepdim=True).clamp_min(self.eps))
            self.V_act.div_(self.V_act.norm(dim=0, keepdim=True).clamp_min(self.eps))

    @torch.no_grad()
    def resvd(self, dtype: torch.dtype = torch.float64) -> None:
        """Re-decompose W = U diag(s) Vᵀ (in `dtype`): orthonormal U, V again, s sorted; W unchanged."""
        u, v = self.full_factors()
        w = (u.to(dtype) * self.s.to(dtype)) @ v.to(dtype).T
        u2, s2, vh2 = torch.linalg.svd(w, full_matrices=False)
        self.U.copy_(u2)
        self.V.copy_(vh2.T)
        self.s.copy_(s2)
        self.U_act.copy_(self.U[:, self.active])
        self.V_act.copy_(self.V[:, self.active])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bias={self.bias is not None}, enhanced_grad={self.enhanced_grad}"

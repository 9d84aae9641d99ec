"""GaLore (Zhao et al., 2024) as a baseline: AdamW whose moments live in a rank-r projection of each gradient.

For a 2-D parameter with gradient G (m, n) the projector is the top-r left singular vectors P (m, r) of G when
m <= n (else the top-r right ones Q (n, r)), recomputed every `update_proj_gap` steps; Adam runs on R = PᵀG (or GQ)
and the update P·N (or N·Qᵀ) is scaled by `scale`. Parameters in groups without `galore=True` get plain AdamW.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from sparsenets.errors import ConfigError


class GaLoreAdamW(torch.optim.Optimizer):
    """AdamW with GaLore gradient projection for the param groups marked `galore=True`.

    Args:
        params: parameters or param groups; a group with `galore=True` projects its 2-D parameters.
        lr, betas, eps, weight_decay: as AdamW (decoupled weight decay).
        rank: projection rank r.
        update_proj_gap: steps between projector recomputations.
        scale: multiplier of the projected-back update (GaLore's α).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        rank: int = 8,
        update_proj_gap: int = 200,
        scale: float = 0.25,
    ) -> None:
        if rank < 1 or update_proj_gap < 1:
            raise ConfigError(
                f"GaLore needs rank >= 1 and update_proj_gap >= 1, got {rank}, {update_proj_gap}"
            )
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "rank": rank,
            "update_proj_gap": update_proj_gap,
            "scale": scale,
            "galore": False,
        }
        super().__init__(params, defaults)

    @staticmethod
    def _projector(grad: torch.Tensor, rank: int) -> torch.Tensor:
        """(m, r) left factor if m <= n, else (n, r) right factor, from the SVD of grad (m, n)."""
        u, _, vh = torch.linalg.svd(grad.float(), full_matrices=False)
        return u[:, :rank] if grad.shape[0] <= grad.shape[1] else vh[:rank].T

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        """One AdamW step (projected for GaLore parameters)."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, st = p.grad, self.state[p]
                project = group["galore"] and p.ndim == 2 and min(p.shape) > group["rank"]
                if not st:
                    st["step"] = 0
                st["step"] += 1
                left = project and p.shape[0] <= p.shape[1]
                if project:
                    if "proj" not in st or (st["step"] - 1) % group["update_proj_gap"] == 0:
                        st["proj"] = self._projector(grad, group["rank"]).to(grad.dtype)
                    grad = st["proj"].T @ grad if left else grad @ st["proj"]
                if "exp_avg" not in st:
                    st["exp_avg"], st["exp_avg_sq"] = torch.zeros_like(grad), torch.zeros_like(grad)
                m, v, t = st["exp_avg"], st["exp_avg_sq"], st["step"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt_().add_(group["eps"]))
                if project:
                    update = (st["proj"] @ update if left else update @ st["proj"].T) * group["scale"]
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
        return loss

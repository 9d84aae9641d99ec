"""Bayesian Linear and Conv2d layers: a Gaussian posterior q(w) = N(μ, σ²) per weight, trained with the local
reparameterisation trick (Kingma et al. 2015).

In training the pre-activation is sampled from its exact Gaussian under q: mean x·μ (+ bias), variance x²·σ²,
so one noise draw per output instead of per weight. In eval mode the layer computes with the posterior mean.
The posterior mean μ *is* the layer's `weight` parameter (the same name and shape as nn.Linear / nn.Conv2d), so
ordinary PyTorch code, `sparsenets.masks` and the parameter names of the plain model all see it; log σ² is the
extra parameter `log_sigma2`, and `prior_var` (buffer, weight-shaped) is the w-step's Gaussian prior variance
b̃/ã. Biases are deterministic and not sparsified. Subclasses change `mean_weight`/`var_weight` (BC-GHS's
multiplicative group scales) and `to_plain` without touching the forward.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sparsenets.turbovbi.prior import kl_weights

VAR_EPS = 1e-16  # keeps the sqrt's gradient finite where an input row is exactly zero


def accumulate_grad_(param: torch.Tensor, grad: torch.Tensor, scale: float) -> None:
    """param.grad += scale·grad (creating it when absent), as autograd would accumulate."""
    if param.grad is None:
        param.grad = grad * scale
    else:
        param.grad.add_(grad, alpha=scale)


@torch.no_grad()
def _load_into(dst: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """Move `dst` to `weight`'s device/dtype and copy `weight` [dst's weight shape] and `bias` into it."""
    dst.to(device=weight.device, dtype=weight.dtype)
    dst.weight.copy_(weight)
    if bias is not None:
        dst.bias.copy_(bias)
    return dst


def log_sigma2_kl_grad(log_sigma2: torch.Tensor, prior_var: torch.Tensor) -> torch.Tensor:
    """∂KL(N(μ, σ²) ‖ N(0, σ_p²))/∂log σ² = ½(σ²/σ_p² − 1), weight-shaped."""
    return 0.5 * (torch.exp(log_sigma2) / prior_var - 1)


class BayesianMixin:
    """The shared part of `BayesLinear` and `BayesConv2d` (`_linear_op` is the layer's own op)."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    log_sigma2: nn.Parameter
    prior_var: torch.Tensor

    def _init_bayes(self, log_sigma2: float, prior_var: float = 1.0) -> None:
        w = self.weight
        self.log_sigma2 = nn.Parameter(torch.full_like(w, float(log_sigma2)))
        self.register_buffer("prior_var", torch.full_like(w.detach(), float(prior_var)))

    def _linear_op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def sigma2(self) -> torch.Tensor:
        """σ² per weight (weight-shaped); unclamped: the KL holds log σ² near log σ_p², and a clamp's masks
        cost a sixth of a w-step on LeNet-300-100."""
        return torch.exp(self.log_sigma2)

    def mean_weight(self) -> torch.Tensor:
        """E_q[W] (weight-shaped): μ for a plain Gaussian posterior."""
        return self.weight

    def var_weight(self) -> torch.Tensor:
        """Var_q[W] (weight-shaped): σ² for a plain Gaussian posterior."""
        return self.sigma2()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in] or [B, C, H, W] → pre-activations; sampled by local reparameterisation in training."""
        mean = self._linear_op(x, self.mean_weight(), self.bias)
        if not self.training:
            return mean
        var = self._linear_op(x * x, self.var_weight(), None)
        return mean + torch.sqrt(var + VAR_EPS) * torch.randn_like(mean)

    def kl(self) -> torch.Tensor:
        """Σ_n KL(N(μ_n, σ_n²) ‖ N(0, prior_var_n)), a scalar (the spec's w-step KL)."""
        return kl_weights(self.weight, self.sigma2(), self.prior_var)

    @torch.no_grad()
    def add_kl_grad_(self, scale: float) -> None:
        """Add scale·∂`kl`/∂(μ, log σ²) to the gradients, in closed form (no autograd graph: a third of a
        w-step's time on LeNet-300-100 went to the KL's graph): ∂/∂μ = μ/σ_p², ∂/∂log σ² = ½(σ²/σ_p² − 1)."""
        accumulate_grad_(self.weight, self.weight / self.prior_var, scale)
        accumulate_grad_(self.log_sigma2, log_sigma2_kl_grad(self.log_sigma2, self.prior_var), scale)

    def plain_weight(self) -> torch.Tensor:
        """The weight the plain layer gets (weight-shaped, detached): the posterior mean."""
        return self.mean_weight().detach().clone()


class BayesLinear(BayesianMixin, nn.Linear):
    """nn.Linear with a Gaussian posterior per weight; `weight` [out, in] is μ."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, log_sigma2: float = -10.0
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._init_bayes(log_sigma2)

    def _linear_op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)

    @classmethod
    def from_plain(cls, layer: nn.Linear, log_sigma2: float) -> BayesLinear:
        """A Bayesian copy of `layer` (μ = its weight, same bias, device and dtype)."""
        new = cls(layer.in_features, layer.out_features, layer.bias is not None, log_sigma2)
        return _load_into(new, layer.weight, layer.bias)

    @torch.no_grad()
    def to_plain(self) -> nn.Linear:
        """A plain nn.Linear with the posterior-mean weight and the bias."""
        w = self.plain_weight()
        return _load_into(nn.Linear(self.in_features, self.out_features, self.bias is not None), w, self.bias)


class BayesConv2d(BayesianMixin, nn.Conv2d):
    """nn.Conv2d with a Gaussian posterior per weight; `weight` [c_out, c_in/groups, kh, kw] is μ."""

    def __init__(self, *args, log_sigma2: float = -10.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_bayes(log_sigma2)

    def _linear_op(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return self._conv_forward(x, w, b)

    def _conv_args(self) -> dict:
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            bias=self.bias is not None,
            padding_mode=self.padding_mode,
        )

    @classmethod
    def from_plain(cls, layer: nn.Conv2d, log_sigma2: float) -> BayesConv2d:
        """A Bayesian copy of `layer` (μ = its weight; same geometry, bias, device and dtype)."""
        new = cls(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias is not None,
            padding_mode=layer.padding_mode,
            log_sigma2=log_sigma2,
        )
        return _load_into(new, layer.weight, layer.bias)

    @torch.no_grad()
    def to_plain(self) -> nn.Conv2d:
        """A plain nn.Conv2d with the posterior-mean weight and the bias."""
        w = self.plain_weight()
        return _load_into(nn.Conv2d(**self._conv_args()), w, self.bias)


BAYES_TYPES: tuple[type, ...] = (BayesLinear, BayesConv2d)


def bayesian_from_plain(layer: nn.Module, log_sigma2: float, cls_map: dict | None = None) -> nn.Module:
    """The Bayesian twin of a plain nn.Linear / nn.Conv2d (`cls_map` maps plain → Bayesian classes)."""
    classes = cls_map or {nn.Linear: BayesLinear, nn.Conv2d: BayesConv2d}
    for plain, bayes in classes.items():
        if type(layer) is plain:
            return bayes.from_plain(layer, log_sigma2)
    raise TypeError(f"no Bayesian twin for {type(layer).__name__}")

"""Lorentz-model (hyperboloid, curvature -1) operations and HyboNet-style layers (Chen et al., ACL 2022).

A point is x = (x₀, x_s) with ⟨x, x⟩_L = -x₀² + ‖x_s‖² = -1, x₀ > 0. `LorentzLinear` keeps its Euclidean
weight in an inner nn.Linear called `linear`, so low-rank and spectral converters can target it by name.
Own ops rather than geoopt: these few closed forms are all the layers need, and the class points of the
decoder are parametrised by their space part, so no Riemannian optimizer is required.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn


def lorentz_inner(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Minkowski inner product -x₀y₀ + Σ x_i y_i over the last dim: (..., D), (..., D) → (...)."""
    return (x * y).sum(-1) - 2 * x[..., 0] * y[..., 0]


def lift(space: torch.Tensor) -> torch.Tensor:
    """The hyperboloid point with space part `space` (..., D-1): x₀ = sqrt(1 + ‖x_s‖²); returns (..., D)."""
    time = torch.sqrt(1 + (space * space).sum(-1, keepdim=True))
    return torch.cat([time, space], dim=-1)


def expmap0(u: torch.Tensor) -> torch.Tensor:
    """Exponential map at the origin of a tangent vector with space part u (..., D-1) → point (..., D)."""
    norm = u.norm(dim=-1, keepdim=True).clamp_min(1e-7)
    return torch.cat([torch.cosh(norm), torch.sinh(norm) * u / norm], dim=-1)


def logmap0(x: torch.Tensor) -> torch.Tensor:
    """Logarithmic map at the origin: point (..., D) → tangent space part (..., D-1)."""
    space = x[..., 1:]
    dist = torch.acosh(x[..., :1].clamp_min(1 + 1e-7))
    return dist * space / space.norm(dim=-1, keepdim=True).clamp_min(1e-7)


def sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """HyboNet's squared Lorentzian distance -2 - 2⟨x, y⟩_L (>= 0 on the hyperboloid): (..., D) → (...)."""
    return (-2 - 2 * lorentz_inner(x, y)).clamp_min(0)


class LorentzLinear(nn.Module):
    """HyboNet's Lorentz linear layer: y = W x (+b); time t = sigmoid(y₀)·e^scale + 1.1; space rescaled onto
    the hyperboloid, ‖y_s‖ = sqrt(t² - 1).

    Args:
        in_features, out_features: ambient dims (time coordinate included).
        bias: learn a bias in `linear`.
        dropout: dropout on the input.
        nonlin: apply ReLU to the input's space part first (a hidden layer's activation).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dropout: float = 0.0,
        nonlin: bool = False,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.dropout, self.nonlin = nn.Dropout(dropout), nonlin
        self.scale = nn.Parameter(torch.tensor(math.log(10.0)))
        bound = 1.0 / math.sqrt(out_features)
        with torch.no_grad():
            nn.init.uniform_(self.linear.weight, -bound, bound)
            self.linear.weight[:, 0] = 0  # the input's time coordinate starts ignored, as in HyboNet
            if bias:
                self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Points (..., in) → points (..., out) on the hyperboloid."""
        if self.nonlin:
            x = torch.cat([x[..., :1], F.relu(x[..., 1:])], dim=-1)
        y = self.linear(self.dropout(x))
        space = y[..., 1:]
        time = torch.sigmoid(y[..., :1]) * self.scale.clamp(max=10).exp() + 1.1
        factor = (time * time - 1) / (space * space).sum(-1, keepdim=True).clamp_min(1e-8)
        return torch.cat([time, space * factor.sqrt()], dim=-1)


def lorentz_aggregate(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Lorentz centroid of neighbours: s = A x, then s / sqrt(|⟨s, s⟩_L|). adj (N, N) dense or sparse, x (N, D)."""
    s = torch.sparse.mm(adj, x) if adj.is_sparse else adj @ x
    return s / lorentz_inner(s, s).abs().clamp_min(1e-8).sqrt().unsqueeze(-1)


class LorentzGCN(nn.Module):
    """Hyperbolic GCN (HyboNet encoder): features → hyperboloid, then `layers` × (LorentzLinear, aggregate).

    Args:
        in_features: Euclidean feature size f; points live in dim f+1 first, then `dim`+1.
        dim: hidden space dimension (ambient `dim`+1).
        layers: graph convolution layers.
        dropout: input dropout of every LorentzLinear.
    """

    def __init__(self, in_features: int, dim: int = 64, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [in_features + 1] + [dim + 1] * layers
        self.convs = nn.ModuleList(
            LorentzLinear(a, b, dropout=dropout, nonlin=i > 0)
            for i, (a, b) in enumerate(itertools.pairwise(sizes))
        )

    def forward(self, feats: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """feats (N, f), adj (N, N) row-normalised with self loops → points (N, dim+1)."""
        x = expmap0(feats)
        for conv in self.convs:
            x = lorentz_aggregate(adj, conv(x))
        return x


class LorentzClassifier(nn.Module):
    """HyboNet decoder: logit_c = 2 + 2⟨x, p_c⟩_L + b_c with class points p_c = lift(learned space part)."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.points = nn.Parameter(torch.randn(classes, dim) * 0.1)
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Points (N, dim+1) → logits (N, classes)."""
        return 2 + 2 * lorentz_inner(x.unsqueeze(-2), lift(self.points)) + self.bias

"""The GNS-style encode–process–decode stepper: GIOROM's (on M sampled particles) and the full-order GNS baseline.

Model contract (LagrangeBench style): `model(sample) -> {"acc": [M, d], "acc_norm": [M, d]}` where `sample` is a
dict with `pos` [M, C + 1, d] (the history window, oldest first), `types` [M] long, and optionally `graph`
[2, E] (senders, receivers; built from the last positions with radius R when absent). "acc" is the predicted
acceleration per frame² in data units, "acc_norm" the same normalised: acc = acc_norm·s + μ_a with
s = sqrt(σ_a² + σ_noise²).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.giorom.config import StepperConfig
from sparsenets.giorom.features import edge_inputs, node_inputs
from sparsenets.giorom.gno import GNOBlock
from sparsenets.giorom.graph import radius_graph
from sparsenets.giorom.layers import InteractionLayer, mlp


class Stepper(nn.Module):
    """Encode (node and edge MLPs) → n_mp interaction layers (with the optional GNO block halfway) → decode.

    Serves all three roles of the study: the full GNS (n_mp = 10 on all N), A′ (GIOROM's stepper on all N) and
    B (the same stepper on M sampled particles with an enlarged radius).
    """

    def __init__(self, cfg: StepperConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, h, st = cfg.dim, cfg.hidden, cfg.stats
        noise2 = st.noise_std**2
        self.register_buffer("vel_mean", torch.tensor(st.vel_mean))
        self.register_buffer("vel_scale", torch.tensor([math.sqrt(s * s + noise2) for s in st.vel_std]))
        self.register_buffer("acc_mean", torch.tensor(st.acc_mean))
        self.register_buffer("acc_scale", torch.tensor([math.sqrt(s * s + noise2) for s in st.acc_std]))
        self.register_buffer("low", torch.tensor([lo for lo, _ in cfg.bounds]))
        self.register_buffer("high", torch.tensor([hi for _, hi in cfg.bounds]))
        self.embed = nn.Embedding(cfg.n_types, cfg.type_embedding)
        n_acc = (cfg.history - 1) * d if cfg.acc_history else 0
        self.node_encoder = mlp(cfg.type_embedding + cfg.history * d + 2 * d + n_acc, h, h)
        self.edge_encoder = mlp(d + 1, h, h)
        self.layers = nn.ModuleList(InteractionLayer(h) for _ in range(cfg.n_mp))
        self.gno = GNOBlock(cfg) if cfg.latent_grid else None
        self.decoder = mlp(h, h, d, layer_norm=False)

    def check(self, sample: dict[str, torch.Tensor]) -> None:
        """Raise ConfigError unless sample's `pos` is [M, C + 1, d] and `types` [M] with types < n_types."""
        pos, types = sample["pos"], sample["types"]
        want = (self.cfg.history + 1, self.cfg.dim)
        if pos.dim() != 3 or tuple(pos.shape[1:]) != want or types.shape != pos.shape[:1]:
            raise ConfigError(
                f"sample needs pos [M, {want[0]}, {want[1]}] and types [M]; got pos {tuple(pos.shape)}, "
                f"types {tuple(types.shape)}"
            )
        if types.numel() and (int(types.min()) < 0 or int(types.max()) >= self.cfg.n_types):
            raise ConfigError(f"particle types must lie in [0, {self.cfg.n_types}); raise n_types")

    def forward(self, sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """sample: {"pos": [M, C + 1, d], "types": [M], optional "graph": [2, E]} -> {"acc", "acc_norm"}: [M, d]."""
        cfg, pos = self.cfg, sample["pos"]
        last = pos[:, -1]
        graph = sample.get("graph")
        if graph is None:
            graph = radius_graph(last, cfg.radius, cfg.self_loops)
        edge_feats = edge_inputs(last, graph, cfg.radius)
        edge_weight = 1.0 / (1.0 + edge_feats[:, -1:])  # far neighbours count less: 1/(1 + |Δx|/R)
        counts = torch.bincount(graph[1], minlength=pos.shape[0]).clamp_min(1).unsqueeze(1)
        inv_degree = 1.0 / counts.to(pos.dtype)
        acc_norm = (self.acc_mean, self.acc_scale) if cfg.acc_history else None
        feats = node_inputs(pos, self.vel_mean, self.vel_scale, self.low, self.high, cfg.radius, acc_norm)
        h = self.node_encoder(torch.cat([self.embed(sample["types"]), feats], dim=-1))
        e = self.edge_encoder(edge_feats)
        half = len(self.layers) // 2
        for i, layer in enumerate(self.layers):
            if i == half and self.gno is not None:
                h = h + self.gno(h, last)
            h, e = layer(h, e, graph, edge_weight, inv_degree)
        acc_norm = self.decoder(h)
        return {"acc": acc_norm * self.acc_scale + self.acc_mean, "acc_norm": acc_norm}

    def normalise_acc(self, acc: torch.Tensor) -> torch.Tensor:
        """[..., d] accelerations in data units -> normalised units (the loss's)."""
        return (acc - self.acc_mean) / self.acc_scale

"""The building blocks of the stepper: GNS-style MLPs and the interaction (message-passing) layer."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

EDGE_BLOCK = 8192  # edges pushed through the edge MLP together


def mlp(n_in: int, hidden: int, n_out: int, layer_norm: bool = True, layers: int = 3) -> nn.Sequential:
    """`layers` linear layers with ReLU between them and an optional final LayerNorm; weights N(0, 1/fan_in).

    Maps [..., n_in] to [..., n_out].
    """
    sizes = [n_in] + [hidden] * (layers - 1) + [n_out]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        nn.init.normal_(lin.weight, std=1.0 / math.sqrt(a))
        nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(nn.ReLU(inplace=True))  # in place: no extra [E, H] buffer per layer on edge MLPs
    if layer_norm:
        mods.append(nn.LayerNorm(n_out))
    return nn.Sequential(*mods)


def mean_aggregate(values: torch.Tensor, receivers: torch.Tensor, inv_degree: torch.Tensor) -> torch.Tensor:
    """Mean of edge values [E, C] per receiver: [n, C], with inv_degree [n, 1] = 1 / max(degree, 1)."""
    out = torch.zeros(inv_degree.shape[0], values.shape[1], dtype=values.dtype, device=values.device)
    return out.index_add_(0, receivers, values) * inv_degree


class InteractionLayer(nn.Module):
    """m_ij = MLP([h_i, h_j, e_ij]); h_i += MLP([h_i, mean_j m_ij·w_ij]); e_ij += m_ij (w_ij = 1/(1 + |Δx|/R)).

    The edge MLP's first layer is applied to the nodes before the gather (W·[h_i, h_j, e] = A·h_i + B·h_j + C·e),
    the same function for a fraction of the work when edges outnumber nodes.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.edge = mlp(3 * hidden, hidden, hidden)
        self.node = mlp(2 * hidden, hidden, hidden)

    def forward(
        self,
        h: torch.Tensor,
        e: torch.Tensor,
        edge_index: torch.Tensor,
        edge_weight: torch.Tensor,
        inv_degree: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """h: [n, H] nodes, e: [E, H] edges, edge_index: [2, E] (senders, receivers), edge_weight: [E, 1],
        inv_degree: [n, 1]. Returns the updated (h, e) of the same shapes."""
        first = self.edge[0]
        w_recv, w_send, w_edge = first.weight.split(self.hidden, dim=1)
        send, recv = edge_index[0], edge_index[1]
        # the bias rides on the receiver projection (computed per node), so per edge: two gathers, one addmm
        p_recv = torch.addmm(first.bias, h, w_recv.T)
        p_send = h @ w_send.T
        summed = torch.zeros_like(h)
        new_e = []
        # edges in cache-sized blocks: a block's [block, H] intermediates stay in cache through the whole MLP
        for start in range(0, e.shape[0], EDGE_BLOCK):
            r, s = recv[start : start + EDGE_BLOCK], send[start : start + EDGE_BLOCK]
            e_blk = e[start : start + EDGE_BLOCK]
            pre = torch.addmm(p_recv.index_select(0, r), e_blk, w_edge.T).add_(p_send.index_select(0, s))
            m = self.edge[1:](pre)
            summed = summed.index_add(0, r, m * edge_weight[start : start + EDGE_BLOCK])
            new_e.append(e_blk + m)
        agg = summed * inv_degree
        e_out = torch.cat(new_e) if len(new_e) > 1 else (new_e[0] if new_e else e)
        return h + self.node(torch.cat([h, agg], dim=-1)), e_out

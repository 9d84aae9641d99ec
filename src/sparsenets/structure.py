"""How regular a sparse network's support is: the Turbo-VBI spec's regularity metrics, for any method's weights.

Every metric reads a weight tensor's *support grid* G (`sparsenets.grids.support_grid`: a Linear weight
[out, in] gives G = weight.T [in, out]; a Conv2d weight [c_out, c_in, k, k] gives k×k tiles
G[c_in·k + i, c_out·k + j] = W[c_out, c_in, i, j]), so a column of G holds one output neuron's incoming weights
(or one column of taps of a filter across its input channels).

- `runs_per_column(G)`: mean number of maximal runs of non-zeros per column (1 = one contiguous cluster).
- `block_density(G)`: nnz / cells of the non-empty 4×4 tiles (1 = every touched tile full).
- `compression(weights)`: |W| / |W ≠ 0| over all tensors.
- `units_left(weights)`: neurons/filters alive per unit layer (input, hidden..., output) of a feed-forward chain.
- `structure_report(model)`: all of them per Linear/Conv2d layer of a model, JSON-ready.

    report = structure_report(model)          # {"layers": [...], "compression": 41.3, "units": [...]}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sparsenets.errors import ConfigError
from sparsenets.grids import support_grid

__all__ = [
    "block_density",
    "compression",
    "drop_dead_units_",
    "nonzero_runs",
    "prunable_weights",
    "runs_per_column",
    "structure_report",
    "units_left",
]


def _as_grid(grid: Tensor) -> Tensor:
    if grid.dim() != 2:
        raise ConfigError(f"a support grid is 2-D (rows × columns); got shape {tuple(grid.shape)}")
    return grid != 0


def nonzero_runs(grid: Tensor) -> Tensor:
    """Number of maximal runs of non-zeros down each column of `grid` (R, C) → (C,) int64.

    A run starts wherever an entry is non-zero and the one above it (or the top edge) is zero."""
    nz = _as_grid(grid)
    above = torch.zeros_like(nz[:1])
    starts = nz & ~torch.cat([above, nz[:-1]], dim=0)
    return starts.sum(dim=0)


def runs_per_column(grid: Tensor, nonempty_only: bool = False) -> float:
    """Mean non-zero runs per column of a support grid (R, C).

    Args:
        grid: the support grid; entries ≠ 0 are in the support.
        nonempty_only: average over columns with at least one non-zero only (dead neurons left out);
            default all columns, as the spec states (a dead column counts 0 runs).

    Returns:
        The mean; 0.0 for an all-zero grid.
    """
    runs = nonzero_runs(grid).double()
    if nonempty_only:
        runs = runs[runs > 0]
    return float(runs.mean()) if runs.numel() else 0.0


def _touched_tiles(grid: Tensor, tile: int) -> tuple[int, int]:
    """(nnz, cells) of the non-empty tile×tile tiles of a support grid (R, C); edge tiles count their own cells."""
    if tile < 1:
        raise ConfigError(f"block_density: tile must be >= 1; got {tile}")
    nz = _as_grid(grid)
    r, c = nz.shape
    pad = (0, (-c) % tile, 0, (-r) % tile)  # padding adds no non-zeros, and no cells (counted apart)
    rows, cols = (r + pad[3]) // tile, (c + pad[1]) // tile
    per_tile = [
        torch.nn.functional.pad(t, pad).reshape(rows, tile, cols, tile).sum(dim=(1, 3))
        for t in (nz.float(), torch.ones(r, c))
    ]
    touched = per_tile[0] > 0
    return int(per_tile[0][touched].sum()), int(per_tile[1][touched].sum())


def block_density(grid: Tensor, tile: int = 4) -> float:
    """nnz / cells of the non-empty tile×tile tiles of a support grid (R, C); tiles start at (0, 0).

    Edge tiles of a grid whose sides are not multiples of `tile` are smaller; they count their own cells (ours:
    the spec's 16 per tile would mark a full 4×2 edge tile half-empty). 1.0 means every touched tile is full;
    0.0 for an all-zero grid.
    """
    nnz, cells = _touched_tiles(grid, tile)
    return nnz / cells if cells else 0.0


def compression(weights: Sequence[Tensor]) -> float:
    """|W| / |W ≠ 0| over all tensors of `weights` (any shapes); inf when every entry is zero."""
    if not weights:
        raise ConfigError("compression needs at least one weight tensor")
    total = sum(w.numel() for w in weights)
    nnz = sum(int((w != 0).sum()) for w in weights)
    return total / nnz if nnz else float("inf")


def _in_out_alive(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(inputs with a non-zero outgoing weight (in,), outputs with a non-zero incoming weight (out,)) of a Linear
    [out, in] or Conv2d [out, in, kh, kw] weight."""
    nz = (weight != 0).reshape(weight.shape[0], weight.shape[1], -1).any(dim=2)
    return nz.any(dim=0), nz.any(dim=1)


def units_left(weights: Sequence[Tensor]) -> list[int]:
    """Alive units per unit layer of a feed-forward chain of Linear/Conv2d weights, SBP-style
    ("784-300-100-10" for a dense LeNet-300-100): [inputs of layer 1, outputs of layer 1, ..., outputs of last].

    A hidden unit is alive when it has a non-zero incoming and a non-zero outgoing weight; the inputs need an
    outgoing one, the outputs an incoming one. Where a conv feeds a Linear through a flatten, filter c owns the
    Linear's inputs c·r … (c+1)·r − 1 (r = in_features / channels) and is alive if any of them is.

    Args:
        weights: the chain's weights in order, Linear (out, in) or Conv2d (out, in, kh, kw).
    """
    if not weights:
        raise ConfigError("units_left needs at least one weight tensor")
    alive = [_in_out_alive(w) for w in weights]
    counts = [int(alive[0][0].sum())]
    for i in range(len(weights) - 1):
        outs, ins = alive[i][1], alive[i + 1][0]
        if ins.numel() % outs.numel():
            raise ConfigError(
                f"units_left: layer {i + 2} has {ins.numel()} inputs, not a multiple of layer {i + 1}'s "
                f"{outs.numel()} outputs; pass only a feed-forward chain"
            )
        fed = ins.reshape(outs.numel(), -1).any(dim=1)  # a flattened filter owns a contiguous block of inputs
        counts.append(int((outs & fed).sum()))
    counts.append(int(alive[-1][1].sum()))
    return counts


def prunable_weights(model: nn.Module) -> list[tuple[str, Tensor]]:
    """(name, weight) of every module with a 2-D or 4-D `.weight` tensor, in module order: nn.Linear, nn.Conv2d
    and layers that keep such a `.weight` (converted Bayesian layers)."""
    out = []
    for name, mod in model.named_modules():
        w = getattr(mod, "weight", None)
        if isinstance(w, Tensor) and w.dim() in (2, 4) and not isinstance(mod, nn.Embedding):
            out.append((name, w.detach()))
    return out


def structure_report(model: nn.Module, tile: int = 4) -> dict[str, Any]:
    """The regularity metrics of every Linear/Conv2d layer of `model` and their totals.

    Returns:
        {"layers": [{"name", "shape", "nnz", "size", "compression", "runs_per_column",
        "runs_per_nonempty_column", "block_density"} ...], "compression": over all layers, "units": alive units
        per unit layer (`units_left`, or None when the layers do not form a chain), "runs_per_column": all
        layers' runs / all their columns, "block_density": all nnz / all cells of non-empty tiles.}
    """
    layers = []
    named = prunable_weights(model)
    if not named:
        raise ConfigError("structure_report: the model has no Linear or Conv2d weight")
    runs, columns, tile_nnz, tile_cells = 0, 0, 0, 0
    for name, w in named:
        g = support_grid(w.cpu())
        col_runs = nonzero_runs(g)
        nnz, cells = _touched_tiles(g, tile)
        runs, columns, tile_nnz, tile_cells = (
            runs + int(col_runs.sum()),
            columns + g.shape[1],
            tile_nnz + nnz,
            tile_cells + cells,
        )
        layers.append(
            {
                "name": name,
                "shape": list(w.shape),
                "nnz": int((w != 0).sum()),
                "size": w.numel(),
                "compression": compression([w]),
                "runs_per_column": runs_per_column(g),
                "runs_per_nonempty_column": runs_per_column(g, nonempty_only=True),
                "block_density": nnz / cells if cells else 0.0,
            }
        )
    weights = [w for _, w in named]
    try:
        units: list[int] | None = units_left(weights)
    except ConfigError:  # branches or skips: no single chain to count along
        units = None
    return {
        "layers": layers,
        "compression": compression(weights),
        "units": units,
        "runs_per_column": runs / columns,
        "block_density": tile_nnz / tile_cells if tile_cells else 0.0,
    }


@torch.no_grad()
def drop_dead_units_(layers: Sequence[nn.Module]) -> int:
    """Zero every weight of the units a feed-forward chain of Linear/Conv2d layers cannot use, in place, so
    `sparsenets.compact` removes them: a unit with no non-zero outgoing weight loses its incoming weights and
    bias (exact: nothing reads it); a unit with no non-zero incoming weight loses its bias and outgoing weights
    (its output act(bias) was a constant; ours: dropped rather than folded into the next bias, which a padded
    conv would not take exactly, so re-measure the error afterwards). Repeats until nothing changes.

    Args:
        layers: the chain's layers in order (each with `.weight` (out, in[, kh, kw]) and optional `.bias`);
            activations between them must map 0 to 0 (ReLU, LeakyReLU, max-pool, flatten).

    Returns:
        The number of units dropped.
    """
    dropped = 0
    while True:
        changed = 0
        for i in range(len(layers) - 1):
            cur, nxt = layers[i], layers[i + 1]
            w, v = cur.weight, nxt.weight
            incoming = (w != 0).reshape(w.shape[0], -1).any(dim=1)
            # unit c owns a contiguous block of the next layer's inputs (one, or h·w after a flatten)
            outgoing = (v != 0).transpose(0, 1).reshape(w.shape[0], -1).any(dim=1)
            biased = (cur.bias != 0) if cur.bias is not None else torch.zeros_like(incoming)
            dead = ~(incoming & outgoing) & (incoming | outgoing | biased)  # dead and not yet all zero
            if not bool(dead.any()):
                continue
            w[dead] = 0.0
            if cur.bias is not None:
                cur.bias[dead] = 0.0
            cols = dead.repeat_interleave(v.shape[1] // w.shape[0])
            v[:, cols] = 0.0
            changed += int(dead.sum())
        dropped += changed
        if not changed:
            return dropped

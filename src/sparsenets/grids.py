"""Support grids: a layer's weight laid out as one 2-D grid whose neighbours are the weights that cluster together.

Turbo-VBI's support prior (a Markov chain or 2-D MRF on the grid) and the regularity metrics (non-zero runs per
column, block density) both read a layer through this one layout:
- Linear `weight` [out, in] → G = weight.T, shape [in, out]: a column is one output neuron's incoming weights,
  a row one input's fan-out; a zero column is a dead output neuron.
- Conv2d `weight` [c_out, c_in, k, k] → G[c_in·k + i, c_out·k + j] = W[c_out, c_in, i, j], shape
  [c_in·k, c_out·k]: each kernel is one k×k tile, tiles of adjacent c_in (rows) and c_out (columns) touch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparsenets.errors import ConfigError


def _conv_sizes(shape: Sequence[int]) -> tuple[int, int, int]:
    """(c_out, c_in, k) of a square-kernel Conv2d weight shape; ConfigError otherwise."""
    c_out, c_in, kh, kw = (int(s) for s in shape)
    if kh != kw:
        raise ConfigError(
            f"support grid needs a square conv kernel, got {kh}×{kw}: use a k×k kernel or support='iid'"
        )
    return c_out, c_in, kh


def support_grid(weight: torch.Tensor) -> torch.Tensor:
    """The support grid of one layer's weight: the same values, moved to grid positions (a view for Linear).

    weight: Linear [out, in] → returns [in, out]; Conv2d [c_out, c_in, k, k] → returns [c_in·k, c_out·k] with
    G[c_in·k + i, c_out·k + j] = W[c_out, c_in, i, j]. Any other rank, or a non-square kernel, raises ConfigError.
    """
    if weight.dim() == 2:
        return weight.t()
    if weight.dim() == 4:
        c_out, c_in, k = _conv_sizes(weight.shape)
        # [c_out, c_in, i, j] → [c_in, i, c_out, j] so rows run over (c_in, i) and columns over (c_out, j)
        return weight.permute(1, 2, 0, 3).reshape(c_in * k, c_out * k)
    raise ConfigError(
        f"support grid takes a Linear [out, in] or Conv2d [c_out, c_in, k, k] weight, got shape "
        f"{tuple(weight.shape)}: leave this layer dense or use support='iid'"
    )


def from_support_grid(grid: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Exact inverse of `support_grid`: grid [in, out] or [c_in·k, c_out·k] → a tensor of the weight's `shape`.

    grid: 2-D, as `support_grid` returns for a weight of `shape`; shape: [out, in] or [c_out, c_in, k, k].
    Raises ConfigError when the grid does not fit the shape.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        expected: tuple[int, ...] = (shape[1], shape[0])
    elif len(shape) == 4:
        c_out, c_in, k = _conv_sizes(shape)
        expected = (c_in * k, c_out * k)
    else:
        raise ConfigError(f"support grid shape must be [out, in] or [c_out, c_in, k, k], got {shape}")
    if tuple(grid.shape) != expected:
        raise ConfigError(
            f"support grid of shape {tuple(grid.shape)} does not fit weight shape {shape} "
            f"(expected a grid of {expected})"
        )
    if len(shape) == 2:
        return grid.t()
    return grid.reshape(c_in, k, c_out, k).permute(2, 0, 1, 3)

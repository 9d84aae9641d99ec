"""A Sparsey hierarchy: level 0 = binary input, each higher level a grid of macs fed by the level below.

Frames of a sequence also feed each level's H bundle (own cells at t−1) and D bundle (upper cells at t−1);
unrelated items are episode-initial frames (U only). Learning stores items in order, one presentation each;
recognition runs batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.sdr.csa import CSAResult, code_cells
from sparsenets.sdr.fields import all_fields, expand_to_cells, grid_positions, patch_fields, radius_fields
from sparsenets.sdr.level import LevelSpec, MacLevel
from sparsenets.sdr.params import CSAParams


@dataclass(frozen=True)
class UpperLevel:
    """A level above the first: its spec, mac grid (rows, cols) and field radius over the level below.

    radius is in positions normalised to [0, 1]; None means every mac of the level below.
    """

    spec: LevelSpec
    grid: tuple[int, int] = (1, 1)
    radius: float | None = None


class SparseyNet(nn.Module):
    """Levels of macs over a binary input of `n_inputs` units.

    Args:
        n_inputs: size of the binary input vector (images are flattened row-major).
        levels: MacLevel objects, bottom first; level ℓ's U source must be level ℓ−1's cells (the input
            for the first).
        seed: seed of the model's random generator (sampling and tie-breaks).
    """

    def __init__(self, n_inputs: int, levels: list[MacLevel], seed: int = 0) -> None:
        super().__init__()
        if not levels:
            raise SparsenetsError("a SparseyNet needs at least one level of macs")
        sizes = [n_inputs] + [lv.size for lv in levels[:-1]]
        for i, (lv, s) in enumerate(zip(levels, sizes)):
            if lv.u.source_size != s:
                raise SparsenetsError(
                    f"level {i + 1} reads a source of {lv.u.source_size} units but the level below has {s}"
                )
        self.n_inputs = n_inputs
        self.levels = nn.ModuleList(levels)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        """The model's random generator on `device` (one per device, seeded with the model seed)."""
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return self.levels[0].u.weight.device

    @classmethod
    def single_mac(
        cls,
        n_inputs: int,
        q: int,
        k: int,
        params: CSAParams | None = None,
        band: tuple[float, float] = (0.0, 1.0),
        freeze_threshold: float | None = 0.5,
        horizontal: bool = False,
        seed: int = 0,
        cell_freeze: float | None = None,
    ) -> SparseyNet:
        """One mac whose field is the whole input (optionally with an H bundle for sequences)."""
        if n_inputs < 1:
            raise SparsenetsError(f"n_inputs must be >= 1, got {n_inputs}")
        level = MacLevel(
            LevelSpec(q, k, band),
            all_fields(1, n_inputs),
            n_inputs,
            None,
            params,
            freeze_threshold,
            seed,
            cell_freeze,
        )
        if horizontal:
            level.add_horizontal(all_fields(1, 1))
        return cls(n_inputs, [level], seed)

    @classmethod
    def image_hierarchy(
        cls,
        height: int,
        width: int,
        first: LevelSpec,
        patch: int,
        stride: int,
        upper: list[UpperLevel],
        params: CSAParams | list[CSAParams] | None = None,
        freeze_threshold: float | None = 0.5,
        seed: int = 0,
        cell_freeze: float | list[float | None] | None = None,
    ) -> SparseyNet:
        """Level 1 on square image patches; each upper level a grid over the level below.

        Args:
            params: one CSAParams for all levels or one per level.
            cell_freeze: per-cell freezing threshold (see `Bundle.learn`), one for all levels or one per level.
        """
        n_levels = 1 + len(upper)
        plist = params if isinstance(params, list) else [params or CSAParams()] * n_levels
        if len(plist) != n_levels:
            raise SparsenetsError(f"got {len(plist)} CSAParams for {n_levels} levels")
        rf, grid = patch_fields(height, width, patch, stride)
        cflist = cell_freeze if isinstance(cell_freeze, list) else [cell_freeze] * n_levels
        if len(cflist) != n_levels:
            raise SparsenetsError(f"got {len(cflist)} cell_freeze values for {n_levels} levels")
        levels = [MacLevel(first, rf, height * width, None, plist[0], freeze_threshold, seed, cflist[0])]
        for i, up in enumerate(upper):
            below = levels[-1]
            n_up = up.grid[0] * up.grid[1]
            if up.radius is None:
                mac_rf = all_fields(n_up, below.n_macs)
            else:
                mac_rf = radius_fields(grid_positions(*grid), grid_positions(*up.grid), up.radius)
            max_active = (mac_rf >= 0).sum(1) * below.q
            lv = MacLevel(
                up.spec,
                expand_to_cells(mac_rf, below.cells),
                below.size,
                max_active,
                plist[i + 1],
                freeze_threshold,
                seed + i + 1,
                cflist[i + 1],
            )
            levels.append(lv)
            grid = up.grid
        return cls(height * width, levels, seed)

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Validate and flatten a binary input: (B, n_inputs) or (B, ...) images → (B, n_inputs) float."""
        if x.dim() < 2 or x[0].numel() != self.n_inputs:
            raise SparsenetsError(
                f"input of shape {tuple(x.shape)} does not match the model's {self.n_inputs} input units; "
                f"pass a (batch, {self.n_inputs}) tensor or images with that many pixels"
            )
        x = x.reshape(x.shape[0], -1)
        if x.dtype != torch.bool and bool(((x != 0) & (x != 1)).any()):
            raise SparsenetsError(
                "Sparsey needs binary input (0/1 or bool); binarise it first, e.g. (x > 0.5)"
            )
        return x.to(device=self.device, dtype=torch.float32)

    def cells(self, result: CSAResult, level: int) -> torch.Tensor:
        """(B, M·Q·K) 0/1 cell vector of a level's codes."""
        return code_cells(result.winners, self.levels[level].k)

    def _frame(
        self,
        x: torch.Tensor | None,
        prev: list[torch.Tensor | None],
        mode: str,
        how: str | None = None,
    ) -> list[CSAResult]:
        out: list[CSAResult] = []
        src = x
        gen = self.generator(self.device)
        for i, lv in enumerate(self.levels):
            h = prev[i] if lv.h is not None else None
            d = prev[i + 1] if (lv.d is not None and i + 1 < len(self.levels)) else None
            r = lv.step(src, h, d, mode, gen, how)
            out.append(r)
            src = code_cells(r.winners, lv.k)
        return out

    def learn(self, x: torch.Tensor) -> list[CSAResult]:
        """Store each input once, in order, as an episode-initial frame; returns per-level results (B, ...)."""
        x = self.check_input(x)
        per_item = [
            self._frame(x[b : b + 1], [None] * (len(self.levels) + 1), "learn") for b in range(len(x))
        ]
        return [
            CSAResult(*(torch.cat(t) for t in zip(*[p[i] for p in per_item])))
            for i in range(len(self.levels))
        ]

    @torch.no_grad()
    def recognise(self, x: torch.Tensor, batch_size: int = 1024, how: str | None = None) -> list[CSAResult]:
        """Codes of a batch of inputs without learning (episode-initial frames); per-level results (B, ...).

        `how` overrides the recognition selection (`sample` gives learning-mode codes without storing them).
        """
        x = self.check_input(x)
        chunks = [
            self._frame(x[i : i + batch_size], [None] * (len(self.levels) + 1), "recognise", how)
            for i in range(0, len(x), batch_size)
        ]
        return [
            CSAResult(*(torch.cat(t) for t in zip(*[c[i] for c in chunks]))) for i in range(len(self.levels))
        ]

    def run_sequence(self, frames: torch.Tensor, mode: str) -> list[list[CSAResult]]:
        """Present T frames of B sequences in parallel with H/D context from t−1.

        Args:
            frames: (T, B, n_inputs) binary.
            mode: `learn` (B must be 1 when sequences share weights in order) or `recognise`.

        Returns:
            results[t][level].
        """
        if frames.dim() < 3:
            raise SparsenetsError(f"frames must be (T, B, n_inputs), got shape {tuple(frames.shape)}")
        prev: list[torch.Tensor | None] = [None] * (len(self.levels) + 1)
        out = []
        for t in range(frames.shape[0]):
            res = self._frame(self.check_input(frames[t]), prev, mode)
            prev = [code_cells(r.winners, lv.k) for r, lv in zip(res, self.levels)] + [None]
            out.append(res)
        return out

    @torch.no_grad()
    def recall_sequence(self, first: torch.Tensor, length: int) -> list[list[CSAResult]]:
        """Cued recall: recognise the first frame, then let H/D context alone choose the next `length − 1` codes.

        Args:
            first: (B, n_inputs) binary first elements.

        Returns:
            results[t][level] for t = 0..length−1.
        """
        if all(lv.h is None and lv.d is None for lv in self.levels):
            raise SparsenetsError(
                "cued recall needs horizontal or top-down bundles; build the model with them"
            )
        res = self._frame(self.check_input(first), [None] * (len(self.levels) + 1), "recognise")
        out = [res]
        for _ in range(length - 1):
            prev = [code_cells(r.winners, lv.k) for r, lv in zip(res, self.levels)] + [None]
            res = self._frame(None, prev, "recognise")
            out.append(res)
        return out

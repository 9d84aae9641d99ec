"""A level of macs: M macs of Q competitive modules × K binary cells, with U, H and D afferent bundles.

Weights are 0/1 float32 in a matmul-friendly layout (M, n, Q·K): step 1 of the CSA for all macs and a batch of
inputs is one batched matmul. They are set once (w = 1 when a source is active and the cell wins) and a bundle
freezes when more than `freeze_threshold` of its weights are set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.sdr.csa import CSAResult, code_cells, code_selection, input_sums
from sparsenets.sdr.params import CSAParams


class Bundle(nn.Module):
    """One afferent input type (U, H or D) of a level: receptive fields, weights and freeze flags.

    Args:
        rf: (M, n) long indices into the source vector, -1 = padding.
        source_size: length S of the source vector.
        cells: Q·K cells per mac.
        max_active: (M,) most inputs that can be active at once in each field (band denominator);
            defaults to the field size.
    """

    def __init__(
        self, rf: torch.Tensor, source_size: int, cells: int, max_active: torch.Tensor | None = None
    ) -> None:
        super().__init__()
        if rf.dim() != 2 or rf.numel() == 0 or int(rf.max()) >= source_size:
            raise SparsenetsError(
                f"receptive fields must be an (M, n) table of indices below the source size {source_size}"
            )
        self.source_size = source_size
        real = rf >= 0
        self.register_buffer("rf", torch.where(real, rf, torch.full_like(rf, source_size)))
        self.register_buffer("n_real", real.sum(1).to(torch.float32))
        self.register_buffer(
            "max_active", self.n_real.clone() if max_active is None else max_active.to(torch.float32)
        )
        self.register_buffer("weight", torch.zeros(rf.shape[0], rf.shape[1], cells))
        self.register_buffer("frozen", torch.zeros(rf.shape[0], dtype=torch.bool))
        self.register_buffer("n_set", torch.zeros(rf.shape[0]))  # set weights per mac, kept incrementally
        self.register_buffer("n_set_cell", torch.zeros(rf.shape[0], cells))  # set weights per cell

    def gather(self, src: torch.Tensor, name: str) -> torch.Tensor:
        """(B, S) source activity → (B, M, n) activity of each mac's field (padding reads 0)."""
        if src.dim() != 2 or src.shape[1] != self.source_size:
            raise SparsenetsError(
                f"{name} input has shape {tuple(src.shape)} but its receptive fields index a source of "
                f"{self.source_size} units; pass a (batch, {self.source_size}) tensor"
            )
        padded = torch.nn.functional.pad(src.to(self.weight.dtype), (0, 1))
        return padded[:, self.rf]

    def learn(
        self,
        x: torch.Tensor,
        cells: torch.Tensor,
        threshold: float | None,
        cell_threshold: float | None = None,
    ) -> None:
        """Set w = 1 from active field inputs to winning cells of non-frozen macs; then update freezing.

        Args:
            x: (M, n) field activity of one item; cells: (M, Q·K) 0/1 winners (zero rows: no code).
            threshold: freeze a mac's bundle when its set fraction exceeds this (None: never freeze).
            cell_threshold: also freeze a single cell's afferent weights when their set fraction exceeds
                this (our option, not in the papers: it caps how much any one cell's union can grow).
        """
        post = cells * (~self.frozen)[:, None]
        if cell_threshold is not None:
            post = post * (self.n_set_cell <= cell_threshold * self.n_real[:, None])
        # Touch only the rows of active inputs: cost O(active·Q·K), not O(n·Q·K).
        m_idx, j_idx = torch.nonzero(x, as_tuple=True)
        old = self.weight[m_idx, j_idx]
        new = torch.maximum(old, post[m_idx])
        self.weight[m_idx, j_idx] = new
        self.n_set_cell.index_add_(0, m_idx, new - old)
        self.n_set = self.n_set_cell.sum(1)
        if threshold is not None:
            self.frozen |= self.n_set / (self.n_real * self.weight.shape[2]) > threshold

    def set_fraction(self) -> torch.Tensor:
        """(M,) fraction of each mac's weights that are set."""
        return self.n_set / (self.n_real * self.weight.shape[2])


@dataclass(frozen=True)
class LevelSpec:
    """Shape of one level: Q CMs × K cells per mac and the activation band [lo, hi] (fractions of max input)."""

    q: int
    k: int
    band: tuple[float, float] = (0.1, 0.7)

    def __post_init__(self) -> None:
        if int(self.q) < 1 or int(self.k) < 1:
            raise SparsenetsError(f"Q and K must both be >= 1 (got Q={self.q}, K={self.k})")
        lo, hi = self.band
        if not 0.0 <= lo <= hi:
            raise SparsenetsError(f"activation band must satisfy 0 <= lo <= hi, got {self.band}")


class MacLevel(nn.Module):
    """M macs that share Q, K, the CSA parameters and the activation band.

    Args:
        spec: Q, K and band.
        u_rf: (M, n) indices of each mac's bottom-up field into the source vector (-1 padding).
        u_size: source vector length (pixels, or lower cells M'·Q'·K').
        u_max_active: (M,) most U inputs that can be active (pixels: field size; mac sources: macs·Q').
        params: CSA parameters; freeze_threshold: None disables freezing.
        cell_freeze: freeze each cell's afferent weights past this set fraction (None: off, the default).
        seed: seeds the fixed tie-break priorities (used when params.tie_break == "fixed").
    """

    def __init__(
        self,
        spec: LevelSpec,
        u_rf: torch.Tensor,
        u_size: int,
        u_max_active: torch.Tensor | None = None,
        params: CSAParams | None = None,
        freeze_threshold: float | None = 0.5,
        seed: int = 0,
        cell_freeze: float | None = None,
    ) -> None:
        super().__init__()
        self.spec, self.q, self.k = spec, spec.q, spec.k
        self.cell_freeze = cell_freeze
        self.params = params or CSAParams()
        self.freeze_threshold = freeze_threshold
        self.n_macs = u_rf.shape[0]
        self.cells = self.q * self.k
        self.u = Bundle(u_rf, u_size, self.cells, u_max_active)
        self.h: Bundle | None = None
        self.d: Bundle | None = None
        prio = torch.rand(self.n_macs, self.q, self.k, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("priority", prio)

    @property
    def size(self) -> int:
        """Length of this level's cell vector, M·Q·K."""
        return self.n_macs * self.cells

    def add_horizontal(self, mac_rf: torch.Tensor) -> None:
        """H bundle from this level's own cells at t−1; `mac_rf` (M, r) lists the macs each mac hears."""
        from sparsenets.sdr.fields import expand_to_cells

        self.h = Bundle(expand_to_cells(mac_rf, self.cells), self.size, self.cells)
        self.h.max_active.copy_((mac_rf >= 0).sum(1) * self.q)

    def add_topdown(self, mac_rf: torch.Tensor, upper: MacLevel) -> None:
        """D bundle from the cells of the level above at t−1; `mac_rf` (M, r) indexes upper macs."""
        from sparsenets.sdr.fields import expand_to_cells

        self.d = Bundle(expand_to_cells(mac_rf, upper.cells), upper.size, self.cells)
        self.d.max_active.copy_((mac_rf >= 0).sum(1) * upper.q)

    def step(
        self,
        u_src: torch.Tensor | None,
        h_src: torch.Tensor | None = None,
        d_src: torch.Tensor | None = None,
        mode: str = "recognise",
        generator: torch.Generator | None = None,
        how: str | None = None,
    ) -> CSAResult:
        """One frame of the CSA on every mac, for a batch of inputs.

        Args:
            u_src: (B, S_u) bottom-up source, or None for cued recall (codes chosen from H and D alone,
                by argmax, in every mac that hears an active H or D input).
            h_src: (B, M·Q·K) this level's cells at t−1, or None; d_src: (B, S_d) upper cells at t−1.
            mode: `learn` (items stored one after another, in batch order) or `recognise`.
            how: overrides the recognition selection (`sample` or `argmax`); learning always uses
                `params.learn_select`.

        Returns:
            CSAResult with winners (B, M, Q).
        """
        if mode not in ("learn", "recognise"):
            raise SparsenetsError(f"mode must be 'learn' or 'recognise', got {mode!r}")
        xu = self.u.gather(u_src, "bottom-up (U)") if u_src is not None else None
        xh = self.h.gather(h_src, "horizontal (H)") if (self.h is not None and h_src is not None) else None
        xd = self.d.gather(d_src, "top-down (D)") if (self.d is not None and d_src is not None) else None
        if mode == "recognise":
            return self._select(xu, xh, xd, how or self.params.recognise_select, generator)
        results = []
        for b in range(xu.shape[0] if xu is not None else 1):
            one = [None if x is None else x[b : b + 1] for x in (xu, xh, xd)]
            r = self._select(*one, self.params.learn_select, generator)
            cells = code_cells(r.winners, self.k).view(self.n_macs, self.cells)
            for bundle, x in zip((self.u, self.h, self.d), one):
                if bundle is not None and x is not None:
                    bundle.learn(x[0], cells, self.freeze_threshold, self.cell_freeze)
            results.append(r)
        return CSAResult(*(torch.cat(t) for t in zip(*results)))

    def _select(
        self,
        xu: torch.Tensor | None,
        xh: torch.Tensor | None,
        xd: torch.Tensor | None,
        how: str,
        generator: torch.Generator | None,
    ) -> CSAResult:
        terms = []
        p = self.params
        for bundle, x, e in ((self.u, xu, p.e_u), (self.h, xh, p.e_h), (self.d, xd, p.e_d)):
            if bundle is not None and x is not None:
                terms.append((input_sums(x, bundle.weight), x.sum(-1), e))
        if not terms:
            raise SparsenetsError("a frame needs a bottom-up input, or H/D context for cued recall")
        if xu is not None:
            frac = terms[0][1] / self.u.max_active
            active = (frac >= self.spec.band[0]) & (frac <= self.spec.band[1]) & (terms[0][1] > 0)
        else:
            how = "argmax"  # cued recall reads out the best-supported code
            active = sum(t[1] for t in terms) > 0
        prio = self.priority if p.tie_break == "fixed" else None
        return code_selection(terms, active, p, how, self.k, generator, prio)

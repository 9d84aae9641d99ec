"""Readouts that turn codes into labels: label nodes, nearest stored code, and a linear probe.

All take binary cell vectors (N, D) (see `SparseyNet.cells`); Sparsey itself learns no labels.
"""

from __future__ import annotations

import torch

from sparsenets.errors import SparsenetsError


def _check(cells: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    if cells.dim() != 2:
        raise SparsenetsError(f"cell vectors must be (N, D), got shape {tuple(cells.shape)}")
    if labels is not None and (labels.dim() != 1 or len(labels) != len(cells)):
        raise SparsenetsError(f"labels must be (N,) with N = {len(cells)}, got shape {tuple(labels.shape)}")


def code_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Number of shared active cells between every pair: (N, D), (P, D) → (N, P) (= CMs with the same winner)."""
    return a.to(torch.float32) @ b.to(torch.float32).T


class LabelNodes:
    """One node per class; training adds each code's cells to its true label.

    Weights: `count` (co-activations), `binary` (any co-activation) or `normalised` (counts divided by the
    cell's total, i.e. P(label | cell)). Prediction: the label whose node gets the largest summed input.
    """

    def __init__(self, n_cells: int, n_classes: int, weights: str = "count") -> None:
        if weights not in ("count", "binary", "normalised"):
            raise SparsenetsError(f"weights must be 'count', 'binary' or 'normalised', got {weights!r}")
        self.weights = weights
        self.table = torch.zeros(n_cells, n_classes)

    def fit(self, cells: torch.Tensor, labels: torch.Tensor) -> LabelNodes:
        """Associate (N, D) codes with (N,) int labels (one pass, order-free)."""
        _check(cells, labels)
        self.table += (
            cells.to(torch.float32).T @ torch.nn.functional.one_hot(labels, self.table.shape[1]).float()
        )
        return self

    def scores(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, D) codes → (N, classes) summed label-node input."""
        _check(cells)
        if self.weights == "binary":
            w = (self.table > 0).float()
        elif self.weights == "normalised":
            w = self.table / self.table.sum(1, keepdim=True).clamp(min=1.0)
        else:
            w = self.table
        return cells.to(torch.float32) @ w

    def predict(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, D) → (N,) predicted labels."""
        return self.scores(cells).argmax(1)


class NearestCode:
    """The label of the nearest stored code(s); `k` > 1 votes among the k nearest.

    metric `overlap` ranks by shared active cells (Sparsey's similarity); `hamming` by differing bits
    (|a| + |b| − 2·overlap), which also suits raw binary pixels (the k-NN baseline).
    """

    def __init__(self, k: int = 1, metric: str = "overlap") -> None:
        if k < 1:
            raise SparsenetsError(f"k must be >= 1, got {k}")
        if metric not in ("overlap", "hamming"):
            raise SparsenetsError(f"metric must be 'overlap' or 'hamming', got {metric!r}")
        self.k, self.metric = k, metric
        self.codes = torch.zeros(0, 0)
        self.labels = torch.zeros(0, dtype=torch.long)

    def fit(self, cells: torch.Tensor, labels: torch.Tensor) -> NearestCode:
        """Store (N, D) codes with their (N,) labels."""
        _check(cells, labels)
        self.codes, self.labels = cells.to(torch.float32), labels.clone()
        return self

    def nearest(self, cells: torch.Tensor, batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, D) queries → (P, k) indices of the nearest stored codes and their (P, k) overlaps."""
        _check(cells)
        idx, ov = [], []
        for i in range(0, len(cells), batch_size):
            q = cells[i : i + batch_size].to(torch.float32)
            o = code_overlap(q, self.codes)
            if self.metric == "hamming":  # similarity = −distance
                o = 2 * o - q.sum(1, keepdim=True) - self.codes.sum(1)[None, :]
            top = o.topk(min(self.k, o.shape[1]), dim=1)
            idx.append(top.indices)
            ov.append(top.values)
        return torch.cat(idx), torch.cat(ov)

    def predict(self, cells: torch.Tensor) -> torch.Tensor:
        """(P, D) → (P,) labels (majority of the k nearest, ties to the nearer)."""
        idx, ov = self.nearest(cells)
        votes = torch.zeros(len(cells), int(self.labels.max()) + 1)
        # Weight 1 per neighbour plus a tiny overlap bonus so ties go to the closer codes.
        votes.scatter_add_(1, self.labels[idx], 1.0 + 1e-3 * ov)
        return votes.argmax(1)


class LinearProbe:
    """Multinomial logistic regression on codes, fitted by full-batch L-BFGS (deterministic)."""

    def __init__(self, n_cells: int, n_classes: int, l2: float = 1e-4, steps: int = 100) -> None:
        self.linear = torch.nn.Linear(n_cells, n_classes)
        self.l2, self.steps = l2, steps

    def fit(self, cells: torch.Tensor, labels: torch.Tensor) -> LinearProbe:
        """Fit on (N, D) codes and (N,) labels."""
        _check(cells, labels)
        x = cells.to(torch.float32)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)
        opt = torch.optim.LBFGS(self.linear.parameters(), max_iter=self.steps, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.linear(x), labels)
            loss = loss + self.l2 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        return self

    @torch.no_grad()
    def predict(self, cells: torch.Tensor) -> torch.Tensor:
        """(N, D) → (N,) labels."""
        _check(cells)
        return self.linear(cells.to(torch.float32)).argmax(1)

"""Modular arithmetic tables (grokking tasks), generated deterministically; nothing to install."""

from __future__ import annotations

import torch

from sparsenets.data.types import Labeled
from sparsenets.errors import SparsenetsError

OPS = ("add", "subtract", "multiply", "x2xyy2", "divide")
PAIRS = ("all", "le", "lt")


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % k for k in range(2, int(p**0.5) + 1))


def _table(p: int, op: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All operand pairs (a, b) in row-major order and a∘b mod p; divide skips b = 0."""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    if op == "divide":
        a, b = a[b != 0], b[b != 0]
        # Fermat: b^(p-2) is b's inverse mod a prime p; Python ints avoid any overflow.
        inverse = torch.tensor([pow(k, p - 2, p) for k in range(p)], dtype=torch.int64)
        y = a * inverse[b] % p
    elif op == "add":
        y = (a + b) % p
    elif op == "subtract":
        y = (a - b) % p
    elif op == "multiply":
        y = a * b % p
    else:  # x2xyy2
        y = (a * a + a * b + b * b) % p
    return torch.stack([a, b], dim=1), y


def load_modular(
    split: str, p: int = 67, op: str = "add", train_frac: float = 0.4, seed: int = 0, pairs: str = "all"
) -> Labeled:
    """a∘b mod p: x int64 (N, 2), y int64 (N,); train = first floor(train_frac·total) pairs of a seeded shuffle.

    `pairs` picks the table before the split: "all" ordered pairs (p², or p·(p−1) for divide, which skips b = 0
    and needs a prime p), "le" unordered pairs a ≤ b (p(p+1)/2: the grokking-tickets code, 911/1367 at p = 67),
    "lt" a < b.
    """
    if op not in OPS:
        raise SparsenetsError(f"unknown modular op {op!r}; known: {', '.join(OPS)}")
    if pairs not in PAIRS:
        raise SparsenetsError(f"unknown pairs {pairs!r}; known: {', '.join(PAIRS)}")
    if not 0.0 < train_frac < 1.0:
        raise SparsenetsError(f"train_frac must be in (0, 1), not {train_frac}")
    if p < 2 or (op == "divide" and not _is_prime(p)):
        raise SparsenetsError(f"p must be >= 2 (and prime for divide), not {p}")
    x, y = _table(p, op)
    if pairs != "all":  # filter before shuffling so the train fraction is of the unordered table
        keep = x[:, 0] <= x[:, 1] if pairs == "le" else x[:, 0] < x[:, 1]
        x, y = x[keep], y[keep]
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(train_frac * len(y))
    idx = perm[:n_train] if split == "train" else perm[n_train:]
    return Labeled(x[idx], y[idx])

"""Shared wiring of the grokking-tickets experiments: configs, data splits, the cached dense run, report helpers.

The library pieces (stacked training, the masks of every control) live in `sparsenets.tickets`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sparsenets import data
from sparsenets.experiments.plotting import plain_log_ticks
from sparsenets.models.grokking import GrokMLP
from sparsenets.runs import RunConfig, RunContext
from sparsenets.tickets import grokking_times, seeded_ensemble, snapshot, train_until_grokked

Tensors = dict[str, torch.Tensor]
History = list[dict[str, float]]


# `--quick` for the p = 67 MLP studies: a short dense run that every seed trains in seconds
QUICK_DENSE = {"dense_steps": 300, "dense_max_steps": 300, "eval_every": 25}
SMOKE_VERDICT = "smoke run — no verdict"  # what a --quick run writes where a full run judges a claim


@dataclass
class TrainConfig(RunConfig):
    """Fields every grokking-tickets study shares: seeds (stacked), the AdamW protocol, the dense run's length."""

    seeds: int = 3
    eval_every: int = 50
    lr: float = 1e-3
    weight_decay: float = 1.0
    dense_steps: int = 20000  # masks come from the dense run's last step...
    dense_max_steps: int = 30000  # ...extended by 2000 at a time until every seed passed 99% test


@dataclass
class ModularConfig(TrainConfig):
    """a∘b mod p studies (the paper's setting)."""

    p: int = 67
    op: str = "add"
    train_frac: float = 0.4
    pairs: str = "le"  # a ≤ b as in the reference code; "all" for every ordered pair


@dataclass
class Split:
    """Full-batch train and test sets: x (N, ...), y int64 (N,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_train, y_train)."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_test, y_test)."""
        return self.x_test, self.y_test


def modular_split(p: int, op: str, train_frac: float, seed: int, pairs: str = "le") -> Split:
    """a∘b mod p from `sparsenets.data`; pairs "le" = a ≤ b (the reference code: 911/1367 at p = 67), "all" all p²."""
    train = data.load("modular", split="train", p=p, op=op, train_frac=train_frac, seed=seed, pairs=pairs)
    test = data.load("modular", split="test", p=p, op=op, train_frac=train_frac, seed=seed, pairs=pairs)
    return Split(train[0], train[1], test[0], test[1], p)


@dataclass
class DenseRun:
    """The trained dense ensemble (one member per seed) that the tickets' masks come from."""

    model: nn.Module
    init: Tensors  # θ0, name → (E, ...)
    histories: list[History]  # one per seed
    snapshots: dict[int, Tensors]  # weights by step, the last step included
    steps: int  # steps trained


def dense_mlp_run(
    cfg: ModularConfig, ctx: RunContext, snapshot_every: int
) -> tuple[Split, list[int], DenseRun]:
    """The split for `cfg` (seeded by the run seed), the member seeds and the dense MLP run (stacked over seeds).

    The dense run lives inside this run's folder, in dense-HASH (HASH of the data, seeds and training settings),
    so a killed study resumes it from its checkpoint; nothing is written outside the run folder. Snapshots are
    kept every `snapshot_every` steps.

    Returns:
        (split, seeds ctx.seed..ctx.seed+cfg.seeds-1, the dense run).
    """
    split = modular_split(cfg.p, cfg.op, cfg.train_frac, ctx.seed, cfg.pairs)
    seeds = [ctx.seed + i for i in range(cfg.seeds)]
    ctx.log(f"train {len(split.y_train)} / test {len(split.y_test)} pairs; seeds {seeds}")
    key = {"p": cfg.p, "op": cfg.op, "train_frac": cfg.train_frac, "pairs": cfg.pairs, "split_seed": ctx.seed,
           "seeds": seeds, "lr": cfg.lr, "wd": cfg.weight_decay, "eval_every": cfg.eval_every,
           "dense_steps": cfg.dense_steps, "dense_max_steps": cfg.dense_max_steps, "snapshot_every": snapshot_every}  # fmt: skip
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    run_dir = ctx.dir / f"dense-{digest}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dense.json").write_text(json.dumps(key, indent=2))
    model = seeded_ensemble(lambda: GrokMLP(p=cfg.p), seeds)
    init = snapshot(model)
    hist, snaps, end = train_until_grokked(
        model, split.train, split.test, cfg.dense_steps, cfg.dense_max_steps, run_dir=run_dir, names=list(init),
        lr=cfg.lr, weight_decay=cfg.weight_decay, eval_every=cfg.eval_every,
        save_at=list(range(snapshot_every, cfg.dense_max_steps + 1, snapshot_every)),
    )  # fmt: skip
    return split, seeds, DenseRun(model, init, hist, {**snaps, end: snapshot(model)}, end)


def summarize(hist: History) -> dict[str, float | int | None]:
    """Grokking times at 95% (and t_gen at 99%) plus final accuracies of one run."""
    t = grokking_times(hist)
    t99 = grokking_times(hist, threshold=0.99)["t_gen"]
    return {
        **t,
        "t_gen99": t99,
        "final_train": hist[-1]["train_accuracy"],
        "final_test": hist[-1]["test_accuracy"],
    }


def mean_or_none(values: Sequence[float | int | None]) -> float | None:
    """Mean of the values, or None if any is None (a run that never crossed the threshold)."""
    return None if any(v is None for v in values) else float(sum(values) / len(values))


def fmt_steps(values: Sequence[float | int | None], cap: int) -> str:
    """'350 (200–450)' over seeds, '>cap' for runs that never crossed."""
    shown = [f">{cap}" if v is None else f"{int(v)}" for v in values]
    m = mean_or_none(values)
    return (f"{m:,.0f}" if m is not None else "—") + " (" + ", ".join(shown) + ")"


def curve_axes(ax, title: str) -> None:
    """Shared styling of accuracy-vs-step panels."""
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.95, color="grey", lw=0.6, ls=":")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    plain_log_ticks(ax.xaxis)  # last: the ticks follow the steps drawn


def steps_and(hist: History, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one history, skipping step 0."""
    pts = [(r["step"], r[key]) for r in hist if r["step"] > 0]
    return [p[0] for p in pts], [p[1] for p in pts]


def log_speedup(a: float | None, b: float | None) -> float | None:
    """a / b when both exist (e.g. dense t_gen / ticket t_gen)."""
    return a / b if a is not None and b not in (None, 0) else None

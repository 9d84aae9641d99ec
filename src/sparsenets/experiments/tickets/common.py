"""Shared plumbing of the grokking-tickets experiments: data, stacked training, the masks of every control, plots.

Many runs (seeds × controls) train as one stacked ensemble (`sparsenets.models.grokking`): member e has its own
weights, mask and AdamW statistics, and the summed loss gives each member exactly its own gradient.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets import data
from sparsenets.masks import HoldMasks, attach_masks
from sparsenets.models.grokking import stack_models
from sparsenets.tickets import (
    SaveWeightsAt,
    grasp_scores,
    grokking_times,
    magnitude_scores,
    norm_ratio,
    prune_members,
    snapshot,
    snip_scores,
    synflow_masks,
)
from sparsenets.train import Trainer, latest_checkpoint

Tensors = dict[str, torch.Tensor]


@dataclass
class Split:
    """Full-batch train and test sets."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int


def modular_split(p: int, op: str, train_frac: float, seed: int, pairs: str = "le") -> Split:
    """a∘b mod p from `sparsenets.data`; pairs "le" = a ≤ b (the reference code: 911/1367 at p = 67), "all" all p²."""
    train = data.load("modular", split="train", p=p, op=op, train_frac=train_frac, seed=seed, pairs=pairs)
    test = data.load("modular", split="test", p=p, op=op, train_frac=train_frac, seed=seed, pairs=pairs)
    return Split(train[0], train[1], test[0], test[1], p)


def modular_setup(cfg: Any, seed: int) -> tuple[Split, list[int], dict[str, Any]]:
    """The modular-arithmetic split, the member seeds and the identity of the shared dense run for `cfg`.

    Returns:
        (split, seeds seed..seed+cfg.seeds-1, identity dict that names the cached dense run).
    """
    split = modular_split(cfg.p, cfg.op, cfg.train_frac, seed, cfg.pairs)
    ident = {"p": cfg.p, "op": cfg.op, "train_frac": cfg.train_frac, "pairs": cfg.pairs, "split_seed": seed}
    return split, [seed + i for i in range(cfg.seeds)], ident


def build(factory: Callable[[], nn.Module], seeds: Sequence[int]) -> nn.Module:
    """An ensemble with one member per seed, member e initialised exactly as `factory()` under seed e."""
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(factory())
    return stack_models(models)


def repeat_members(t: torch.Tensor, times: int) -> torch.Tensor:
    """(E, ...) → (times·E, ...): the block [t, t, ..., t] (control-major order)."""
    return t.repeat(times, *[1] * (t.dim() - 1))


def ce_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Σ over members of the mean cross-entropy, log-softmax in float64 as in the reference code."""
    x, y = batch
    logits = model(x).double()  # (E, B, C)
    lp = torch.log_softmax(logits, dim=-1)
    return -lp.gather(-1, y.expand(logits.shape[0], -1).unsqueeze(-1)).mean(dim=(1, 2)).sum()


def mse_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Σ over members of the mean squared error to one-hot targets (Omnigrok's MNIST loss)."""
    x, y = batch
    out = model(x)
    target = F.one_hot(y, out.shape[-1]).to(out.dtype)
    return ((out - target) ** 2).sum(-1).mean(-1).sum()


@torch.no_grad()
def member_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(E,) accuracy of every member on (x, y)."""
    correct = None
    for i in range(0, x.shape[0], chunk):
        hits = (model(x[i : i + chunk]).argmax(-1) == y[i : i + chunk]).sum(-1)
        correct = hits if correct is None else correct + hits
    return correct.double() / x.shape[0]


def train_members(
    model: nn.Module,
    split: Split,
    steps: int,
    *,
    names: Sequence[str],
    run_dir: Path | None,
    lr: float = 1e-3,
    weight_decay: float = 1.0,
    eval_every: int = 50,
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor] = ce_loss,
    batch_size: int = 0,
    save_at: Sequence[int] = (),
) -> tuple[list[list[dict[str, float]]], dict[int, Tensors]]:
    """Train every member full-batch (or with `batch_size` samples per step) with AdamW; masks held if attached.

    Returns:
        (one history per member: [{"step", "train_accuracy", "test_accuracy"}], snapshots at `save_at` steps).
    """
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=weight_decay, fused=True
    )
    n = split.x_train.shape[0]

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not batch_size or batch_size >= n:
            return split.x_train, split.y_train
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(step))[:batch_size]
        return split.x_train[idx], split.y_train[idx]

    def eval_fn(m: nn.Module) -> dict[str, float]:
        tr = member_accuracy(m, split.x_train, split.y_train)
        te = member_accuracy(m, split.x_test, split.y_test)
        return {**{f"train_accuracy/{e}": float(v) for e, v in enumerate(tr)},
                **{f"test_accuracy/{e}": float(v) for e, v in enumerate(te)}}  # fmt: skip

    saver = SaveWeightsAt(list(save_at), names)
    history = Trainer(
        model, opt, batches, loss_fn, steps, eval_fn=eval_fn, eval_every=eval_every,
        callbacks=[HoldMasks(), saver], run_dir=run_dir, log_every=max(eval_every, 50), progress=False,
        device="cpu",
    ).fit()  # fmt: skip
    members = model.ensemble
    per = [
        [
            {
                "step": r["step"],
                "train_accuracy": r[f"train_accuracy/{e}"],
                "test_accuracy": r[f"test_accuracy/{e}"],
            }
            for r in history
        ]
        for e in range(members)
    ]
    return per, saver.snapshots


def train_until_grokked(
    model: nn.Module,
    split: Split,
    steps: int,
    max_steps: int,
    *,
    run_dir: Path,
    extend_by: int = 2000,
    **kw: object,
) -> tuple[list[list[dict[str, float]]], dict[int, Tensors], int]:
    """`train_members` for `steps`, then longer in `extend_by` chunks (resuming) until every member passed 99%
    test accuracy or `max_steps` is reached, so a mask taken at the end comes from a generalized network.

    Returns:
        (histories, snapshots, the number of steps trained).
    """
    done = latest_checkpoint(run_dir / "checkpoints")
    if done is not None:  # a finished (possibly extended) run: resume at its end, never train it "back"
        steps = max(steps, int(json.loads(done.read_text())["step"]))
    while True:
        hist, snaps = train_members(model, split, steps, run_dir=run_dir, **kw)
        if steps >= max_steps or all(summarize(h)["t_gen99"] is not None for h in hist):
            return hist, snaps, steps
        steps = min(steps + extend_by, max_steps)


def dense_mlp_run(
    root: Path,
    split: Split,
    seeds: Sequence[int],
    *,
    identity: dict,
    dense_steps: int,
    dense_max_steps: int,
    snapshot_every: int = 2000,
    lr: float = 1e-3,
    weight_decay: float = 1.0,
    eval_every: int = 50,
) -> tuple[nn.Module, Tensors, list[list[dict[str, float]]], dict[int, Tensors], int]:
    """The dense MLP runs (stacked over seeds) that masks are taken from, shared between experiments.

    They live in `root`/_shared/grok-dense-HASH (HASH of `identity` and the training settings), so a second
    experiment with the same dense protocol resumes the finished run from its checkpoint instead of retraining.
    Snapshots are kept every `snapshot_every` steps up to `dense_max_steps`.

    Returns:
        (trained ensemble, θ0, histories, snapshots by step (the last step included), steps trained).
    """
    from sparsenets.models.grokking import GrokMLP

    key = {**identity, "seeds": list(seeds), "lr": lr, "wd": weight_decay, "eval_every": eval_every,
           "dense_steps": dense_steps, "dense_max_steps": dense_max_steps, "snapshot_every": snapshot_every}  # fmt: skip
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    run_dir = root / "_shared" / f"grok-dense-{digest}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "dense.json").write_text(json.dumps(key, indent=2))
    model = build(lambda: GrokMLP(p=identity["p"]), seeds)
    init = snapshot(model)
    hist, snaps, end = train_until_grokked(
        model, split, dense_steps, dense_max_steps, run_dir=run_dir, names=list(init), lr=lr,
        weight_decay=weight_decay, eval_every=eval_every,
        save_at=list(range(snapshot_every, dense_max_steps + 1, snapshot_every)),
    )  # fmt: skip
    return model, init, hist, {**snaps, end: snapshot(model)}, end


def summarize(hist: list[dict[str, float]]) -> dict[str, float | int | None]:
    """Grokking times at 95% (and t_gen at 99%) plus final accuracies of one run."""
    t = grokking_times(hist)
    t99 = grokking_times(hist, threshold=0.99)["t_gen"]
    return {
        **t,
        "t_gen99": t99,
        "final_train": hist[-1]["train_accuracy"],
        "final_test": hist[-1]["test_accuracy"],
    }


def control_masks(
    kind: str,
    init: nn.Module,
    names: Sequence[str],
    rate: float,
    *,
    trained: Tensors | None = None,
    split: Split | None = None,
    generator: torch.Generator | None = None,
    grasp_temperature: float = 200.0,
    synflow_rounds: int = 100,
    ones_input: torch.Tensor | None = None,
    scope: str = "global",
) -> Tensors:
    """Stacked (E, ...) masks of one kind for the ensemble `init` (weights at θ0).

    kinds: "magnitude" (needs `trained` weights), "random" (same count per `scope` unit), "snip", "grasp" (full
    training batch, logits / temperature), "synflow" (all-ones `ones_input`, `synflow_rounds` rounds).
    `scope` ("global" or "layer") applies to "magnitude" and "random"; the PaI methods rank globally.
    """
    params = dict(init.named_parameters())
    if kind == "magnitude":
        return prune_members(magnitude_scores(trained), rate, scope=scope)
    if kind == "random":
        scores = {n: torch.rand(params[n].shape, generator=generator) for n in names}
        return prune_members(scores, rate, scope=scope)
    if kind in ("snip", "grasp"):
        temp = grasp_temperature if kind == "grasp" else 1.0
        x, y = split.x_train, split.y_train

        def loss(m: nn.Module) -> torch.Tensor:
            logits = m(x) / temp
            return (
                F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), y.repeat(logits.shape[0]), reduction="sum"
                )
                / x.shape[0]
            )

        scorer = snip_scores if kind == "snip" else grasp_scores
        return prune_members(scorer(init, loss, names), rate)
    if kind == "synflow":
        return synflow_masks(init, lambda m: m(ones_input), names, rate, rounds=synflow_rounds, stacked=True)
    raise ValueError(f"unknown mask kind {kind!r}")


def member_norm_ratios(init: Tensors, masks: Tensors, p: float) -> torch.Tensor:
    """(E,) r_p = ‖θ0 ⊙ m‖_p / ‖θ0‖_p of each member."""
    members = next(iter(init.values())).shape[0]
    return torch.tensor(
        [
            norm_ratio({k: v[e] for k, v in init.items()}, {k: v[e] for k, v in masks.items()}, p)
            for e in range(members)
        ]
    )


def attach_stacked(model: nn.Module, masks: Tensors) -> None:
    """Attach stacked masks (all-True where a member is dense)."""
    attach_masks(model, masks, apply=True)


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


def steps_and(hist: list[dict[str, float]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one history, skipping step 0."""
    pts = [(r["step"], r[key]) for r in hist if r["step"] > 0]
    return [p[0] for p in pts], [p[1] for p in pts]


def log_speedup(a: float | None, b: float | None) -> float | None:
    """a / b when both exist (e.g. dense t_gen / ticket t_gen)."""
    return a / b if a is not None and b not in (None, 0) else None


def isfinite(x: float | None) -> bool:
    """True for a real, finite number."""
    return x is not None and math.isfinite(x)

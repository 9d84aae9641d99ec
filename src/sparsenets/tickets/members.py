"""Many runs as one stacked ensemble: seeds × controls trained at once, each member exactly its own network.

An ensemble model (e.g. `sparsenets.models.grokking`, `ensemble=E`) holds weights (E, ...) and returns outputs
(E, B, ...). Member e has its own weights, mask and AdamW statistics, and the summed loss gives each member
exactly its own gradient, so a stacked run equals E separate runs (tested) at a fraction of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.masks import HoldMasks, attach_masks
from sparsenets.models.grokking import stack_models
from sparsenets.tickets.grokking import first_crossing
from sparsenets.tickets.rewind import SaveWeightsAt, scale_
from sparsenets.train import Trainer, latest_checkpoint

Tensors = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]
History = list[dict[str, float]]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def seeded_ensemble(factory: Callable[[], nn.Module], seeds: Sequence[int]) -> nn.Module:
    """An ensemble with one member per seed, member e initialised exactly as `factory()` under seed e."""
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(factory())
    return stack_models(models)


def repeat_members(t: torch.Tensor, times: int) -> torch.Tensor:
    """(E, ...) → (times·E, ...): the block [t, t, ..., t] (control-major order)."""
    return t.repeat(times, *[1] * (t.dim() - 1))


def stack_controls(
    make: Callable[[int], nn.Module],
    init: Tensors,
    masks: Sequence[Tensors],
    scale: torch.Tensor | None = None,
) -> nn.Module:
    """One ensemble that trains every control from θ0 at once: block j holds the E members of `init` under
    `masks[j]`, so member j·E + e is control j of network e.

    Args:
        make: `make(n)` builds an ensemble model with n members (its own initial weights are overwritten).
        init: name → (E, ...) θ0 of the E networks.
        masks: one stacked mask set per control, name → (E, ...) bool (all-True for a dense control).
        scale: (len(masks)·E,) factor per member on θ0 (norm-matched dense controls), or None.

    Returns:
        The ensemble with θ0 loaded (scaled) and the masks attached and applied.
    """
    names = list(init)
    model = make(len(init[names[0]]) * len(masks))
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(repeat_members(init[n], len(masks)))
    if scale is not None:
        scale_(model, names, scale)
    attach_masks(model, {n: torch.cat([m[n] for m in masks]) for n in names})
    return model


def stacked_ce_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Σ over members of the mean cross-entropy, log-softmax in float64 (as the grokking reference code).

    batch: x (B, ...) shared by the members, y int64 (B,); the model returns logits (E, B, C).
    """
    x, y = batch
    logits = model(x).double()  # (E, B, C)
    lp = torch.log_softmax(logits, dim=-1)
    return -lp.gather(-1, y.expand(logits.shape[0], -1).unsqueeze(-1)).mean(dim=(1, 2)).sum()


def stacked_mse_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Σ over members of the mean squared error to one-hot targets (Omnigrok's MNIST loss); outputs (E, B, C)."""
    x, y = batch
    out = model(x)
    target = F.one_hot(y, out.shape[-1]).to(out.dtype)
    return ((out - target) ** 2).sum(-1).mean(-1).sum()


@torch.no_grad()
def member_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(E,) float64 accuracy of every member on x (N, ...), y (N,), evaluated `chunk` samples at a time."""
    correct = None
    for i in range(0, x.shape[0], chunk):
        hits = (model(x[i : i + chunk]).argmax(-1) == y[i : i + chunk]).sum(-1)
        correct = hits if correct is None else correct + hits
    return correct.double() / x.shape[0]


def train_members(
    model: nn.Module,
    train: Batch,
    test: Batch,
    steps: int,
    *,
    names: Sequence[str],
    run_dir: Path | None,
    lr: float = 1e-3,
    weight_decay: float = 1.0,
    eval_every: int = 50,
    loss_fn: LossFn = stacked_ce_loss,
    batch_size: int = 0,
    save_at: Sequence[int] = (),
    device: str = "cpu",
) -> tuple[list[History], dict[int, Tensors]]:
    """Train every member full-batch (or on `batch_size` samples per step) with AdamW; attached masks are held.

    Args:
        model: an ensemble (outputs (E, B, C)); trained in place.
        train: (x (N, ...), y (N,)) training set; test: the same for evaluation.
        steps: optimizer steps.
        names: parameters to snapshot at `save_at` steps.
        run_dir: checkpoints and metrics.jsonl (resumed when present), or None.
        lr, weight_decay: AdamW (betas (0.9, 0.98), eps 1e-8).
        eval_every: steps between evaluations of every member.
        loss_fn: `loss_fn(model, (x, y))`, summed over members.
        batch_size: 0 = full batch; else a seeded random subset per step.
        save_at: steps after which to keep an exact snapshot of `names`.
        device: where to train.

    Returns:
        (one history per member: [{"step", "train_accuracy", "test_accuracy"}], snapshots by step).
    """
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=weight_decay, fused=True
    )
    (x_train, y_train), (x_test, y_test) = train, test
    n = x_train.shape[0]

    def batches(step: int) -> Batch:
        if not batch_size or batch_size >= n:
            return x_train, y_train
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(step))[:batch_size]
        return x_train[idx], y_train[idx]

    def eval_fn(m: nn.Module) -> dict[str, float]:
        tr = member_accuracy(m, x_train, y_train)
        te = member_accuracy(m, x_test, y_test)
        return {**{f"train_accuracy/{e}": float(v) for e, v in enumerate(tr)},
                **{f"test_accuracy/{e}": float(v) for e, v in enumerate(te)}}  # fmt: skip

    saver = SaveWeightsAt(list(save_at), names)
    history = Trainer(
        model, opt, batches, loss_fn, steps, eval_fn=eval_fn, eval_every=eval_every,
        callbacks=[HoldMasks(), saver], run_dir=run_dir, log_every=max(eval_every, 50), progress=False,
        device=device,
    ).fit()  # fmt: skip
    per = [
        [
            {
                "step": r["step"],
                "train_accuracy": r[f"train_accuracy/{e}"],
                "test_accuracy": r[f"test_accuracy/{e}"],
            }
            for r in history
        ]
        for e in range(model.ensemble)
    ]
    return per, saver.snapshots


def train_until_grokked(
    model: nn.Module,
    train: Batch,
    test: Batch,
    steps: int,
    max_steps: int,
    *,
    run_dir: Path,
    extend_by: int = 2000,
    threshold: float = 0.99,
    **kw: object,
) -> tuple[list[History], dict[int, Tensors], int]:
    """`train_members` for `steps`, then longer in `extend_by` chunks (resuming from `run_dir`) until every
    member's test accuracy passed `threshold` or `max_steps` is reached, so a mask taken at the end comes from a
    generalized network. `kw` goes to `train_members`.

    Returns:
        (histories, snapshots, the number of steps trained).
    """
    done = latest_checkpoint(run_dir / "checkpoints")
    if done is not None:  # a finished (possibly extended) run: resume at its end, never train it "back"
        steps = max(steps, int(json.loads(done.read_text())["step"]))
    while True:
        hist, snaps = train_members(model, train, test, steps, run_dir=run_dir, **kw)
        grokked = all(first_crossing(h, "test_accuracy", threshold) is not None for h in hist)
        if steps >= max_steps or grokked:
            return hist, snaps, steps
        steps = min(steps + extend_by, max_steps)

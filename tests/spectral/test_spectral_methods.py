"""The public API of `sparsenets.spectral`: its documented example, `prepare_method` for every method, the
schedules driven from a loop of one's own, and the cost measurements the method comparisons report."""

from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparsenets.spectral
from sparsenets.errors import ConfigError
from sparsenets.models.char_transformer import CharTransformer
from sparsenets.spectral import (
    METHODS,
    GaLoreAdamW,
    GradNormTrace,
    LoRAConfig,
    LoRALinear,
    ReLoRASchedule,
    SSTConfig,
    SSTLinear,
    SSTSchedule,
    cost_summary,
    lora_convert,
    optimizer_state_numel,
    prepare_method,
    sst_convert,
    sst_layers,
    steady_costs,
    trainable_parameters,
    training_state_bytes,
)
from sparsenets.train import TensorBatches, Trainer, seed_everything
from tests.spectral.spectral_helpers import next_token_loss, token_batches

torch.set_num_threads(1)


def tiny_lm() -> CharTransformer:
    torch.manual_seed(0)
    return CharTransformer(vocab=11, d=16, heads=2, layers=1, mlp=32, context=8)


def test_docstring_example_converts_trains_a_step_and_merges() -> None:
    code = sparsenets.spectral.__doc__.split("```python\n")[1].split("```")[0].splitlines()
    assert len(code) == 2 + 5  # two imports, then the five lines of the example
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(fc1=nn.Linear(12, 16), act=nn.ReLU(), fc2=nn.Linear(16, 5)))
    x, y = torch.randn(8, 12), torch.randint(0, 5, (8,))
    dense = copy.deepcopy(model)
    scope = {"model": model, "x": x, "y": y, "loss_fn": F.cross_entropy}
    exec("\n".join(code[:4]), scope)  # imports, config, conversion
    assert isinstance(model.fc1, SSTLinear) and isinstance(model.fc2, SSTLinear)
    assert torch.allclose(model(x), dense(x), atol=1e-5)
    exec("\n".join(code[4:6]), scope)  # optimizer, schedule and one training step
    trained = model(x).detach()
    assert not torch.allclose(trained, dense(x), atol=1e-4)
    assert scope["sst"].own_steps == 1
    exec(code[6], scope)  # merge
    assert type(model.fc1) is nn.Linear and type(model.fc2) is nn.Linear
    assert torch.allclose(model(x), trained, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_prepare_method_sets_up_every_method(method: str) -> None:
    model = tiny_lm()
    dense_params = trainable_parameters(model)
    setup = prepare_method(
        method, model, rank=2, targets=("q", "fc1"), lr=1e-2, steps=6, warmup=2, sst_period=3,
        restart_warmup=1, relora_period=3, seed=0,
    )  # fmt: skip
    layers = {type(model.blocks[0].attn.q), type(model.blocks[0].fc1)}
    expected = {"sst": {SSTLinear}, "lora": {LoRALinear}, "relora": {LoRALinear}}.get(method, {nn.Linear})
    assert layers == expected and type(model.blocks[0].fc2) is nn.Linear  # only the targets are converted
    callbacks = {type(cb) for cb in setup.callbacks}
    assert callbacks == {"sst": {SSTSchedule}, "relora": {ReLoRASchedule}}.get(method, set())
    assert isinstance(setup.optimizer, GaLoreAdamW if method == "galore" else torch.optim.Adam)
    assert (trainable_parameters(model) < dense_params) == (method in ("sst", "lora", "relora"))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    Trainer(
        model, setup.optimizer, token_batches(), next_token_loss, 6, scheduler=setup.scheduler,
        callbacks=setup.callbacks, progress=False, device="cpu",
    ).fit()  # fmt: skip
    moved = [not torch.equal(p, before[n]) for n, p in model.named_parameters() if n.endswith("q.bias")]
    assert moved and all(moved)


def test_prepare_method_rejects_an_unknown_method() -> None:
    with pytest.raises(ConfigError, match="unknown method 'dora'"):
        prepare_method(
            "dora", tiny_lm(), rank=2, targets=("q",), lr=1e-2, steps=6, warmup=2, sst_period=3,
            restart_warmup=1, relora_period=3, seed=0,
        )  # fmt: skip


def _own_loop(model: nn.Module, schedule: SSTSchedule | ReLoRASchedule, steps: int) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    if isinstance(schedule, SSTSchedule):
        schedule.resample(model, opt, 0)  # what Trainer.fit does before the first step
    batches = token_batches()
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        next_token_loss(model, batches(step)).backward()
        opt.step()
        schedule.step(model, opt)
    return model


@pytest.mark.parametrize("kind", ["sst", "relora"])
def test_schedule_step_in_an_own_loop_equals_the_trainer(kind: str) -> None:
    cfg = SSTConfig(rank=2, period=3, iterations_per_round=2)

    def fresh() -> tuple[nn.Module, SSTSchedule | ReLoRASchedule]:
        if kind == "sst":
            return sst_convert(tiny_lm(), cfg), SSTSchedule(cfg, seed=1)
        return lora_convert(tiny_lm(), LoRAConfig(rank=2)), ReLoRASchedule(period=4, seed=1)

    model, schedule = fresh()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Trainer(
        model, opt, token_batches(), next_token_loss, 10, callbacks=[schedule], progress=False, device="cpu"
    ).fit()
    own, own_schedule = fresh()
    _own_loop(own, own_schedule, 10)
    assert own_schedule.own_steps == 10
    if kind == "sst":
        assert (
            (own_schedule.resamples, own_schedule.resvds) == (schedule.resamples, schedule.resvds) == (4, 1)
        )
    else:
        assert own_schedule.merges == schedule.merges == 2
    for (name, a), b in zip(model.state_dict().items(), own.state_dict().values()):
        assert torch.equal(a, b), name


def test_cost_measurements_count_weights_gradients_and_adam_state() -> None:
    model = sst_convert(tiny_lm(), SSTConfig(rank=2, period=100))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    trace = GradNormTrace(every=1)
    Trainer(
        model, opt, token_batches(), next_token_loss, 3, callbacks=[trace], progress=False, device="cpu"
    ).fit()
    n_train = trainable_parameters(model)
    assert n_train == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert optimizer_state_numel(opt) == 2 * n_train  # every trainable scalar holds two fp32 moments
    stored = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert training_state_bytes(model, opt) == stored + 4 * n_train + 4 * 2 * n_train  # + grads + moments
    costs = cost_summary(model, opt, trace)
    assert costs["trainable_params"] == n_train and costs["step_time_s"] > 0
    assert [s for s, _ in trace.trace] == [0, 1, 2] and len(trace.step_times) == 2
    # a run that ends right after dropping state still reports the steady state
    partial = {**costs, "optimizer_state": 0, "train_state_bytes": costs["train_state_bytes"] - 8 * n_train}
    assert steady_costs(partial) == steady_costs(costs) == (2 * n_train, costs["train_state_bytes"])
    assert all(isinstance(layer, SSTLinear) for layer in sst_layers(model))


def test_grad_norm_trace_survives_a_resume(tmp_path: Path) -> None:
    x, y = torch.randn(64, 5), torch.randn(64, 1)

    def train(steps: int, run_dir: Path) -> GradNormTrace:
        seed_everything(0)
        model = torch.nn.Linear(5, 1)
        trace = GradNormTrace(every=2)
        Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            TensorBatches(x, y, batch_size=8, seed=0),
            lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]),
            steps,
            callbacks=[trace],
            run_dir=run_dir,
            checkpoint_every=10,
            device="cpu",
            progress=False,
        ).fit()
        return trace

    whole = train(40, tmp_path / "a")
    train(20, tmp_path / "b")  # stops at step 20 with a checkpoint there
    resumed = train(40, tmp_path / "b")  # a fresh callback: the first 20 steps come from the checkpoint
    assert [s for s, _ in resumed.trace] == [s for s, _ in whole.trace]
    assert torch.allclose(torch.tensor(resumed.trace), torch.tensor(whole.trace))

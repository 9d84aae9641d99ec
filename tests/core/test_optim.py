"""The proximal optimizer: budgets, blocks, stages, finiteness checks, held masks, schedulers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout, coupled_layouts
from sparsenets.models.cnn import VGG16BN, LeNet5
from sparsenets.optim import ProxBlock, ProxOptimizer, decay_free_groups, kept_count
from sparsenets.prox import PROXES, topk_multipliers, wgsef_multipliers
from tests.core.structured_helpers import train_prox


def test_hold_mask_fine_tuning_keeps_zeros_and_state_roundtrip() -> None:
    torch.manual_seed(2)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    model = LeNet5(width=0.5)
    opt = train_prox(model, x, y, "wgsef", steps=5)
    opt.hold_mask()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert opt.kept() == [b.k for b in opt.blocks]
    state = opt.state_dict()
    other = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), opt.blocks)
    other.load_state_dict(state)
    assert other.steps_done == opt.steps_done and other.frozen is not None


def test_hold_mask_with_a_fresh_optimizer_steps_with_it_and_keeps_zeros() -> None:
    torch.manual_seed(4)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    model = LeNet5(width=0.5)
    opt = train_prox(model, x, y, "wgsef", steps=5)
    fresh = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=5e-4)
    opt.hold_mask(fresh)
    assert opt.optimizer is fresh and opt.param_groups[0]["lr"] == 0.01
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert opt.kept() == [b.k for b in opt.blocks]
    other = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05), opt.blocks)
    with pytest.raises(SparsenetsError, match="not in the wrapped optimizer"):
        other.hold_mask(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))


def test_bad_layouts_and_blocks_get_clear_errors() -> None:
    model = LeNet5(width=0.5)
    with pytest.raises(SparsenetsError, match="no layer"):
        GroupLayout.of_layer(model, "nope")
    with pytest.raises(SparsenetsError, match="kind"):
        GroupLayout.of_layer(model, "0", "diagonal")
    lay = GroupLayout.of_layer(model, "0")
    with pytest.raises(SparsenetsError, match="one multiplier per group"):
        lay.scale_(torch.ones(lay.m + 1))
    with pytest.raises(SparsenetsError, match="between 1 and"):
        ProxBlock(lay, lay.m + 1, 0.1)
    with pytest.raises(SparsenetsError, match="keep ratio"):
        ProxBlock(lay, 1.5, 0.1)
    with pytest.raises(SparsenetsError, match="lam"):
        ProxBlock(lay, 2, -1.0)
    with pytest.raises(SparsenetsError, match="prox must be one of"):
        ProxBlock(lay, 2, 0.1, prox="wgsf")
    with pytest.raises(SparsenetsError, match="prox must be a name"):
        ProxBlock(lay, 2, 0.1, prox=None)  # type: ignore[arg-type]
    with pytest.raises(SparsenetsError, match="needs a selection"):
        opt = ProxOptimizer(
            torch.optim.SGD(model.parameters(), lr=0.1), [ProxBlock(lay, 2, 0.1)], select=None
        )
        opt.finalize()
    with pytest.raises(SparsenetsError, match=r"wraps a torch\.optim\.Optimizer"):
        ProxOptimizer(object(), [ProxBlock(lay, 2, 0.1)])  # type: ignore[arg-type]
    other = LeNet5(width=0.5)
    with pytest.raises(SparsenetsError, match="not in the wrapped optimizer"):
        ProxOptimizer(torch.optim.SGD(other.parameters(), lr=0.1), [ProxBlock(lay, 2, 0.1)])
    with pytest.raises(SparsenetsError, match="> 0"):
        ProxBlock(lay, 2, 0.1, prox=PROXES["wgsef"], weights=-torch.ones(lay.m))
    with pytest.raises(SparsenetsError, match="one value per group"):
        ProxBlock(lay, 2, 0.1, prox=PROXES["wgsef"], weights=torch.ones(lay.m + 1))
    for bad in (0, 2.5, True):
        with pytest.raises(SparsenetsError, match="round_to must be an integer >= 1"):
            ProxBlock(lay, 2, 0.1, round_to=bad)
    for keep in (0.0, 1.5, float("nan")):
        with pytest.raises(SparsenetsError, match="keep ratio must be in"):
            kept_count(10, keep)
    for keep in (0, 11, -1):
        with pytest.raises(SparsenetsError, match="keep as a count must be between 1 and"):
            kept_count(10, keep)
    with pytest.raises(SparsenetsError, match="keep must be a ratio"):
        kept_count(10, True)
    with pytest.raises(SparsenetsError, match="at least one group"):
        kept_count(0, 0.5)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.floats(1e-4, 1.0), st.sampled_from([1, 2, 8, 16, 32]))
def test_kept_count_is_the_nearest_multiple_within_the_layer(m: int, keep: float, r: int) -> None:
    k = kept_count(m, keep, r)
    base = max(1, round(keep * m))
    assert 1 <= k <= m
    if r == 1:
        assert k == base
    elif k != m:  # not capped at the layer size: the multiple of r nearest round(keep·m), at least r
        assert k % r == 0
        assert k == r if base < r / 2 else abs(k - base) <= r / 2


def test_a_keep_ratio_block_rounds_its_count_and_an_int_count_stays() -> None:
    model = VGG16BN(width=1.0)
    lays = coupled_layouts(model, torch.randn(1, 1, 28, 28))
    ks = [ProxBlock(lay, 0.4, 0.1, round_to=16).k for lay in lays]
    assert ks == [32, 32, 48, 48, 96, 96, 96] + [208] * 6  # 0.4·(64, 128, 256, 512), to multiples of 16
    assert [ProxBlock(lay, 0.4, 0.1).k for lay in lays][:3] == [26, 26, 51]
    assert ProxBlock(lays[0], 27, 0.1, round_to=16).k == 27


def test_prox_step_applies_overlapping_blocks_in_stages() -> None:
    """Coupled blocks overlap (a filter's group holds the next layer's input slice), so a block's prox must see
    the result of the blocks it overlaps that ran before it: the step equals applying the blocks one by one with
    fresh norms, stage by stage, and no two blocks of a stage share a parameter."""
    torch.manual_seed(3)
    x = torch.randn(1, 1, 28, 28)
    model, twin = VGG16BN(width=0.125), VGG16BN(width=0.125)
    twin.load_state_dict(model.state_dict())
    sgd = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the step is the prox alone (τ from lam below)
    blocks = [ProxBlock(lay, 0.5, 0.0, PROXES["wgsef"]) for lay in coupled_layouts(model, x)]
    sgd.param_groups[0]["lr"] = 1.0
    for b in blocks:
        b.lam = 50.0
    opt = ProxOptimizer(sgd, blocks)
    assert [len(st) for st in opt.stages] == [7, 6]  # a chain of 13 layers: even blocks, then odd blocks
    for stage in opt.stages:
        ids = [id(p) for b in stage for p in b.layout.params]
        assert len(ids) == len(set(ids))
    opt.step()
    twin_layouts = coupled_layouts(twin, x)  # tracing needs autograd on
    with torch.no_grad():
        for stage in opt.stages:
            for b in stage:
                lay = twin_layouts[blocks.index(b)]
                lay.scale_(wgsef_multipliers(lay.norms(), b.k, 50.0))
    assert any(torch.count_nonzero(b.layout.norms()) < b.layout.m for b in blocks)  # the prox did prune
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_nan_weights_stop_the_prox_step_naming_the_block() -> None:
    """The optimizer checks every block's norms once per step: NaN weights get one clear error."""
    model = LeNet5(width=0.5)
    lay = GroupLayout.of_layer(model, "3")
    opt = ProxOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1), [ProxBlock(lay, 2, 0.1, PROXES["wgsef"])]
    )
    with torch.no_grad():
        model[3].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(SparsenetsError, match="block '3' has NaN"):
        opt.step()


def test_deferred_finiteness_check_raises_at_its_interval_and_before_a_checkpoint() -> None:
    """With check_every (the GPU default is 64: no host read per step) NaN weights raise at the next check, and
    `state_dict` (a checkpoint), `finalize` and `kept` always check first."""
    model = LeNet5(width=0.5)
    lay = GroupLayout.of_layer(model, "3")
    opt = ProxOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        [ProxBlock(lay, 2, 0.1, PROXES["wgsef"])],
        topk_multipliers,
        check_every=4,
    )
    with torch.no_grad():
        model[3].weight[0, 0, 0, 0] = float("nan")
    for _ in range(3):
        opt.step()  # steps 1-3: not checked yet
    with pytest.raises(SparsenetsError, match="block '3' has NaN"):
        opt.step()  # step 4
    for method in ("state_dict", "finalize", "kept"):
        opt.step()  # step 5: unchecked again
        with pytest.raises(SparsenetsError, match="block '3' has NaN"):
            getattr(opt, method)()
    for bad in (0, 2.5, True):
        with pytest.raises(SparsenetsError, match="check_every must be an integer >= 1"):
            ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), [], check_every=bad)


def test_prox_step_is_deterministic_so_ddp_ranks_stay_identical() -> None:
    """Two replicas with identical parameters and gradients stay bitwise identical (what DDP relies on)."""
    torch.manual_seed(4)
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    replicas = [LeNet5(width=0.5) for _ in range(2)]
    replicas[1].load_state_dict(replicas[0].state_dict())
    opts = []
    for model in replicas:
        blocks = [ProxBlock(lay, 0.3, 2.0, prox=PROXES["wgsef"]) for lay in coupled_layouts(model, x[:1])]
        opts.append(
            ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), blocks, select=topk_multipliers)
        )
    for _ in range(3):
        for model, opt in zip(replicas, opts):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p, q in zip(replicas[0].parameters(), replicas[1].parameters()):
        assert torch.equal(p, q)


def test_prox_step_reads_back_to_the_host_once() -> None:
    """A training step's prox over all VGG blocks has no data-dependent shapes (no nonzero / boolean indexing),
    so on a GPU it never waits except for the one finiteness check of all blocks' norms."""
    torch.manual_seed(0)
    model = VGG16BN(width=0.125)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
    blocks = [ProxBlock(lay, 0.4, 0.02, PROXES["wgsef"]) for lay in coupled_layouts(model, x[:1])]
    opt = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), blocks)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()  # first step builds the routes (a one-off read of the ids)
    nn.functional.cross_entropy(model(x), y).backward()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    calls = {e.key: e.count for e in prof.key_averages()}
    assert calls.get("aten::nonzero", 0) == 0
    assert calls.get("aten::_local_scalar_dense", 0) == 1


def test_decay_free_groups_leave_the_blocks_tensors_undecayed_and_decay_the_rest() -> None:
    """One SGD step with zero gradients: only weight decay moves the weights, so the blocks' tensors (a conv
    filter's weight, bias and BatchNorm γ/β, the next layer's input slice) stay put and the rest shrink."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 26 * 26, 4)
    )
    x = torch.randn(2, 1, 28, 28)
    blocks = [ProxBlock(lay, 3, 0.01) for lay in coupled_layouts(model, x[:1])]
    groups = decay_free_groups(model, blocks, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [sorted(names[id(p)] for p in g["params"]) for g in groups] == [
        ["0.bias", "0.weight", "1.bias", "1.weight", "4.weight"],
        ["4.bias"],
    ]
    assert [g["weight_decay"] for g in groups] == [0.0, 0.1]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(groups, lr=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        expected = before[n] * (0.95 if n == "4.bias" else 1.0)
        assert torch.allclose(p, expected), n
    # no block: every parameter decays, in one group
    assert [g["weight_decay"] for g in decay_free_groups(model, [], 0.1)] == [0.1]
    with pytest.raises(SparsenetsError, match="weight_decay must be >= 0"):
        decay_free_groups(model, blocks, float("nan"))
    with pytest.raises(SparsenetsError, match="not parameters of the model"):
        decay_free_groups(nn.Linear(3, 3), blocks, 0.1)


def test_one_budget_keep_ratio_or_count_and_pruning_ratio() -> None:
    """A float is a keep ratio (1.0 keeps all: it once kept one group), an int a count; TP's pruning_ratio p is
    keep = 1 − p."""
    lay = GroupLayout.of_layer(LeNet5(width=0.5), "0")  # 10 filters
    assert ProxBlock(lay, 1.0, 0.1).k == lay.m == 10
    assert ProxBlock(lay, 1, 0.1).k == 1
    assert ProxBlock(lay, 0.3, 0.1).k == kept_count(10, 1 - 0.7) == 3


def test_default_block_applies_the_wgsef_prox_and_a_scheduler_drives_the_optimizer() -> None:
    """Defaults: the WGSEF prox during training, the exact top-k at the end; the wrapper is a torch Optimizer,
    so StepLR changes the lr that sets τ."""
    from sparsenets.prox import wgsef_prox

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    lay = coupled_layouts(model, torch.randn(1, 8))[0]
    block = ProxBlock(lay, 0.25, 0.5)
    opt = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), [block])
    assert isinstance(opt, torch.optim.Optimizer)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        for p in model.parameters():
            p.grad = torch.zeros_like(p)  # no gradient: the step is the prox alone
        w = model[0].weight.detach().clone()
        tau = opt.param_groups[0]["lr"] * 0.5
        rows = torch.cat([w, model[0].bias.detach()[:, None], model[2].weight.detach().T], 1)
        expect = wgsef_prox(rows.double(), 4, tau)[:, : w.shape[1]]
        opt.step()
        assert torch.allclose(model[0].weight.double(), expect, atol=1e-6)
        sched.step()
    assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    opt.finalize()
    assert int((lay.norms() > 0).sum()) == block.k == 4

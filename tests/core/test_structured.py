"""Group layouts, the proximal optimizer wrapper and compaction on real (small) models."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsenets.compact import (
    compact,
    count_flops,
    fastest_memory_format,
    load_compact,
    measure,
    memory_format_of,
    save_compact,
)
from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout, Member, coupled_layouts
from sparsenets.models.cnn import VGG16BN, LeNet5, ResNet18
from sparsenets.optim import ProxBlock, ProxOptimizer, decay_free_groups, kept_count
from sparsenets.prox import PROXES, topk_multipliers, wgsef_multipliers
from sparsenets.train import TensorBatches, Trainer


class TinyResNet(nn.Module):
    """conv-BN → two residual branches added → linear: channels must be tied across the add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.branch = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.head(torch.relu(h + self.branch(h)))


def test_coupled_lenet_groups_match_manual_slices() -> None:
    torch.manual_seed(0)
    model = LeNet5(width=0.5)
    layouts = coupled_layouts(model, torch.randn(1, 1, 28, 28))
    assert [lay.name for lay in layouts] == ["0", "3", "7"]
    conv2, fc1 = model[3], model[7]
    lay = layouts[1]
    c2 = conv2.out_channels
    manual = (
        conv2.weight.reshape(c2, -1).square().sum(1)
        + conv2.bias.square()
        + fc1.weight.reshape(fc1.out_features, c2, 16).square().sum((0, 2))
    )
    torch.testing.assert_close(lay.sq_norms(), manual.double().detach(), rtol=1e-6, atol=0)
    c = torch.zeros(c2)
    c[3] = 2.0
    before = fc1.weight.detach().clone()
    lay.scale_(c)
    assert torch.count_nonzero(conv2.weight[torch.arange(c2) != 3]) == 0
    torch.testing.assert_close(fc1.weight[:, 48:64], 2 * before[:, 48:64])
    assert torch.count_nonzero(fc1.weight[:, :48]) == 0


@pytest.mark.parametrize("kind", ["element", "filter", "channel", "shape", "layer"])
def test_single_layer_kinds(kind: str) -> None:
    conv = nn.Conv2d(3, 4, 3)
    model = nn.Sequential(conv)
    lay = GroupLayout.of_layer(model, "0", kind)
    w = conv.weight.detach().double()
    expected = {
        "element": w.reshape(-1).square(),
        "filter": w.reshape(4, -1).square().sum(1) + conv.bias.detach().double().square(),
        "channel": w.square().sum((0, 2, 3)),
        "shape": w.reshape(4, -1).square().sum(0),
        "layer": w.square().sum().reshape(1),
    }[kind]
    torch.testing.assert_close(lay.sq_norms(), expected)
    lay.scale_(torch.zeros(lay.m))
    assert torch.count_nonzero(conv.weight) == 0


def test_residual_channels_are_tied_across_the_add() -> None:
    model = TinyResNet()
    layouts = coupled_layouts(model, torch.randn(1, 1, 8, 8))
    tied = [lay for lay in layouts if {"stem.0.weight", "branch.2.weight"} <= {mb.name for mb in lay.members}]
    assert len(tied) == 1 and tied[0].m == 8
    names = {mb.name for mb in tied[0].members}
    assert {"stem.1.weight", "stem.1.bias", "branch.0.weight", "head.2.weight"} <= names


def _train_prox(model: nn.Module, x: torch.Tensor, y: torch.Tensor, penalty: str, steps: int = 12):
    blocks = [ProxBlock(lay, 0.5, 0.5, prox=PROXES[penalty]) for lay in coupled_layouts(model, x[:1])]
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    opt = ProxOptimizer(sgd, blocks, select=topk_multipliers, warmup_steps=4)
    trainer = Trainer(
        model,
        opt,
        TensorBatches(x, y, batch_size=16, seed=0),
        lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1]),
        steps,
        device="cpu",
        progress=False,
    )
    trainer.fit()
    return opt


@pytest.mark.parametrize("penalty", ["wgsef", "group_lasso"])
def test_prox_training_ends_with_exactly_k_and_compacts_exactly(penalty: str) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = VGG16BN(width=0.125)
    opt = _train_prox(model, x, y, penalty)
    assert opt.ramp() == 1.0
    opt.finalize()
    assert opt.kept() == [b.k for b in opt.blocks]
    model.eval()
    small = compact(model, x[:1])
    assert max(float((small(x) - model(x)).detach().abs().max()), 0.0) <= 1e-4
    stats = measure(model, small, x[:1], repeat=3)
    assert (
        stats["flops_compact"] < stats["flops_dense"] / 2 and stats["params_compact"] < stats["params_dense"]
    )


def test_measure_times_both_memory_layouts_without_touching_the_models() -> None:
    torch.manual_seed(2)
    model = LeNet5(width=0.5).eval()
    lay = GroupLayout.of_layer(model, "3")
    with torch.no_grad():
        lay.scale_(topk_multipliers(lay.norms(), 4))
    x = torch.randn(1, 1, 28, 28)
    small = compact(model, x)
    both = measure(model, small, x, batches=(2,), repeat=3)
    assert both["speedup_b2"] == both["latency_b2_dense"] / both["latency_b2_compact"]
    assert both["speedup_cl_b2"] == both["latency_cl_b2_dense"] / both["latency_cl_b2_compact"]
    best_dense = min(both["latency_b2_dense"], both["latency_cl_b2_dense"])
    assert both["speedup_best_b2"] == best_dense / min(
        both["latency_b2_compact"], both["latency_cl_b2_compact"]
    )
    assert all(p.is_contiguous() for p in [*model.parameters(), *small.parameters()])  # copies were converted
    plain = measure(model, small, x, batches=(2,), repeat=3, layouts="default")
    assert "speedup_cl_b2" not in plain and "speedup_best_b2" not in plain
    with pytest.raises(SparsenetsError, match="layouts"):
        measure(model, small, x, layouts="nhwc")


def test_hold_mask_fine_tuning_keeps_zeros_and_state_roundtrip() -> None:
    torch.manual_seed(2)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    model = LeNet5(width=0.5)
    opt = _train_prox(model, x, y, "wgsef", steps=5)
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
    opt = _train_prox(model, x, y, "wgsef", steps=5)
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


def test_compact_residual_and_save_load(tmp_path) -> None:
    torch.manual_seed(3)
    model = TinyResNet().eval()
    x = torch.randn(4, 1, 8, 8)
    for lay in coupled_layouts(model, x[:1]):
        c = torch.ones(lay.m)
        c[::2] = 0
        lay.scale_(c)
    small = compact(model, x[:1])
    assert float((small(x) - model(x)).detach().abs().max()) <= 1e-5
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    lenet = LeNet5(width=0.5).eval()
    lay = coupled_layouts(lenet, torch.randn(1, 1, 28, 28))[0]
    lay.scale_(torch.tensor([0.0, 1.0] * (lay.m // 2)))
    small = compact(lenet, torch.randn(1, 1, 28, 28))
    save_compact(small, tmp_path / "lenet")
    again = load_compact(tmp_path / "lenet")
    xs = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(again(xs), small(xs))
    assert again[0].out_channels == lay.m // 2


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
    with pytest.raises(SparsenetsError, match="prox must be a function"):
        ProxBlock(lay, 2, 0.1, prox="wgsef")
    with pytest.raises(SparsenetsError, match="needs a selection"):
        ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), [ProxBlock(lay, 2, 0.1)]).finalize()
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


def test_masks_and_sizes_follow_the_groups() -> None:
    model = LeNet5(width=0.5)
    lay = coupled_layouts(model, torch.randn(1, 1, 28, 28))[1]  # conv2 filters + bias + fc1 input columns
    keep = torch.zeros(lay.m, dtype=torch.bool)
    keep[[0, 5]] = True
    masks = lay.masks(keep)
    assert masks["3.weight"].shape == model[3].weight.shape
    assert masks["3.weight"][[0, 5]].all() and not masks["3.weight"][1].any()
    assert masks["7.weight"][:, :16].all() and not masks["7.weight"][:, 16:80].any()
    per_group = 10 * 25 + 1 + model[7].out_features * 16  # filter + bias + 16 fc1 columns
    assert lay.sizes().tolist() == [float(per_group)] * lay.m


@pytest.mark.parametrize("seed", range(4))
def test_routed_ids_match_a_loop_over_positions(seed: int) -> None:
    """Permuted, shared and missing (-1) group ids: norms, scaling, masks and sizes equal a per-position loop."""
    g = torch.Generator().manual_seed(seed)
    m = 5
    w = nn.Parameter(torch.randn(7, 3, generator=g))
    b = nn.Parameter(torch.randn(4, generator=g))
    ids_w = torch.randint(-1, m, (7,), generator=g)
    ids_b = torch.randperm(m, generator=g)[:4]
    lay = GroupLayout([Member("w", w, (7, 3), 0, ids_w), Member("b", b, (4,), 0, ids_b)], m, "t")
    sq = torch.zeros(m, dtype=torch.float64)
    for x, ids in ((w.detach().double().square().sum(1), ids_w), (b.detach().double().square(), ids_b)):
        for i, j in enumerate(ids.tolist()):
            if j >= 0:
                sq[j] += x[i]
    torch.testing.assert_close(lay.sq_norms(), sq, rtol=1e-12, atol=0)
    keep = torch.rand(m, generator=g) > 0.5
    masks = lay.masks(keep)
    for i, j in enumerate(ids_w.tolist()):
        assert bool(masks["w"][i].all()) == (j < 0 or bool(keep[j]))
    c = torch.rand(m, generator=g, dtype=torch.float64)
    w0, b0 = w.detach().clone(), b.detach().clone()
    lay.scale_(c)
    for i, j in enumerate(ids_w.tolist()):
        torch.testing.assert_close(w[i], w0[i] * (1.0 if j < 0 else float(c[j])))
    torch.testing.assert_close(b.detach(), b0 * c[ids_b].float())
    sizes = torch.zeros(m, dtype=torch.float64)
    for j in ids_w.tolist():
        if j >= 0:
            sizes[j] += 3
    sizes[ids_b] += 1
    assert torch.equal(lay.sizes(), sizes)


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


@pytest.mark.parametrize("fmt", ["channels_last", "auto"])
def test_compact_in_another_memory_layout_keeps_outputs_and_survives_save_load(fmt: str, tmp_path) -> None:
    """The smaller model may run channels-last (faster for thin convs on CPU); same outputs, NCHW inputs work,
    and the layout is saved with it."""
    torch.manual_seed(0)
    model = VGG16BN(width=0.125).eval()
    sample = torch.randn(1, 1, 28, 28)
    for lay in coupled_layouts(model, sample):
        with torch.no_grad():
            lay.scale_(topk_multipliers(lay.norms(), max(1, lay.m // 3)))
    small = compact(model, sample, memory_format=fmt)
    want = "channels_last" if fmt == "channels_last" else memory_format_of(small)
    assert memory_format_of(small) == want and memory_format_of(model) == "contiguous"
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        assert float((small(x) - model(x)).abs().max()) <= 1e-4
        save_compact(small, tmp_path / "m")
        again = load_compact(tmp_path / "m")
        assert memory_format_of(again) == want
        torch.testing.assert_close(again(x), small(x))
    with pytest.raises(SparsenetsError, match="memory_format must be"):
        compact(model, sample, memory_format="nhwc")
    with pytest.raises(SparsenetsError, match="batch and repeat must be >= 1"):
        fastest_memory_format(small, sample, batch=0)


def test_resnet18_trains_to_exactly_k_per_coupled_group_and_compacts_through_save_load(tmp_path) -> None:
    """A real residual network: each stage's residual stream is one coupled group (stem or 1×1 shortcut, every
    BN and second conv that feeds the adds, the next stage's inputs); WGSEF steps, hard top-k, compaction."""
    torch.manual_seed(0)
    model = ResNet18(width=0.25)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    layouts = coupled_layouts(model, x[:1])
    streams = {"stem.0", "blocks.2.shortcut.0", "blocks.4.shortcut.0", "blocks.6.shortcut.0"}
    assert len(layouts) == 12 and streams <= {lay.name for lay in layouts}
    stem = next(lay for lay in layouts if lay.name == "stem.0")
    assert {"blocks.0.conv2.weight", "blocks.1.conv2.weight", "blocks.2.conv1.weight"} <= {
        mb.name for mb in stem.members
    }
    blocks = [ProxBlock(lay, 0.5, 0.05, PROXES["wgsef"]) for lay in layouts]
    opt = ProxOptimizer(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), blocks, topk_multipliers)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.finalize()
    assert opt.kept() == [b.k for b in blocks] == [8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64]
    model.eval()
    small = compact(model, x[:1])
    assert count_flops(model, x[:1]) / count_flops(small, x[:1]) > 3.5
    save_compact(small, tmp_path / "r18")
    again = load_compact(tmp_path / "r18")
    with torch.no_grad():
        assert (model(x) - small(x)).abs().max() <= 1e-4
        assert torch.equal(again(x), small(x))


@pytest.mark.parametrize("build", [LeNet5, VGG16BN, ResNet18])
def test_models_reject_a_non_positive_width(build) -> None:
    with pytest.raises(SparsenetsError, match="width must be a positive multiplier"):
        build(width=0.0)


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

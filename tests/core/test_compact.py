"""Prox training to exactly k, compaction to an ordinary smaller module, save/load, measurement."""

from __future__ import annotations

import pytest
import torch
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
from sparsenets.groups import GroupLayout, coupled_layouts
from sparsenets.models.cnn import VGG16BN, LeNet5, ResNet18
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import PROXES, topk_multipliers
from tests.core.structured_helpers import TinyResNet, train_prox


@pytest.mark.parametrize("penalty", ["wgsef", "group_lasso"])
def test_prox_training_ends_with_exactly_k_and_compacts_exactly(penalty: str) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = VGG16BN(width=0.125)
    opt = train_prox(model, x, y, penalty)
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

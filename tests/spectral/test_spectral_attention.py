"""SST and LoRA layers inside PyTorch's own attention: `.weight` is a tensor view, so nn.MultiheadAttention and
nn.TransformerEncoderLayer run, train the factors, and merge back to plain layers with the same outputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import ConfigError
from sparsenets.spectral import (
    LoRAConfig,
    LoRALinear,
    SSTConfig,
    SSTLinear,
    SSTSchedule,
    lora_convert,
    lora_merge,
    sst_convert,
    sst_layers,
    sst_merge,
)

TARGETS = ("out_proj", "linear1", "linear2")


def _encoder() -> tuple[nn.TransformerEncoderLayer, torch.Tensor]:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0)
    return layer, torch.randn(10, 3, 32)  # (seq, batch, d): batch_first=False, the default


def test_weight_is_a_differentiable_tensor_view() -> None:
    torch.manual_seed(1)
    lin = nn.Linear(12, 8)
    sst = sst_layers(sst_convert(nn.Sequential(lin), SSTConfig(rank=4, targets=("0",))))[0]
    w = sst.weight
    assert isinstance(w, torch.Tensor) and not isinstance(w, nn.Parameter) and w.shape == (8, 12)
    torch.testing.assert_close(w, lin.weight.detach(), atol=1e-5, rtol=0)
    w.sum().backward()
    assert sst.s.grad is not None and sst.U_act.grad is not None and sst.V_act.grad is not None
    assert isinstance(sst.bias, nn.Parameter) and sst.bias.shape == (8,)
    x = torch.randn(5, 12)
    torch.testing.assert_close(sst(x), F.linear(x, sst.weight, sst.bias))


@pytest.mark.parametrize("method", ["sst", "lora"])
def test_transformer_encoder_layer_converts_trains_and_merges(method: str) -> None:
    layer, x = _encoder()
    with torch.no_grad():
        dense_out = layer.eval()(x)
    if method == "sst":
        cfg = SSTConfig(rank=4, targets=TARGETS, period=3)
        sst_convert(layer, cfg)
        kind, schedule = SSTLinear, SSTSchedule(cfg, seed=0)
    else:
        lora_convert(layer, LoRAConfig(rank=4, targets=TARGETS))
        kind, schedule = LoRALinear, None
    assert isinstance(layer.self_attn.out_proj, kind) and isinstance(layer.linear1, kind)
    with (
        torch.no_grad()
    ):  # the same function right after conversion (eval: PyTorch's fast path reads .weight)
        torch.testing.assert_close(layer(x), dense_out, atol=1e-4, rtol=0)
    layer.train()
    factors = [p for n, p in layer.named_parameters() if "out_proj" in n and p.requires_grad]
    before = [p.detach().clone() for p in factors]
    opt = torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=1e-2)
    target = torch.randn_like(x)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = F.mse_loss(layer(x), target)
        loss.backward()
        opt.step()
        if schedule is not None:
            schedule.step(layer, opt)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert any(
        not torch.equal(b, p.detach()) for b, p in zip(before, factors)
    )  # attention's out_proj trained
    layer.eval()
    with torch.no_grad():
        trained_out = layer(x)
    (sst_merge if method == "sst" else lora_merge)(layer)
    assert type(layer.self_attn.out_proj) is nn.Linear and type(layer.linear2) is nn.Linear
    with torch.no_grad():
        torch.testing.assert_close(layer(x), trained_out, atol=1e-5, rtol=0)


def test_multihead_attention_alone_runs_with_converted_out_proj() -> None:
    torch.manual_seed(2)
    mha = nn.MultiheadAttention(16, 2, batch_first=True)
    q = torch.randn(2, 5, 16)
    want, _ = mha(q, q, q)
    sst_convert(mha, SSTConfig(rank=3, targets=("out_proj",)))
    got, _ = mha(q, q, q)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    got.sum().backward()
    assert mha.out_proj.s.grad is not None and mha.in_proj_weight.grad is not None


def test_converting_one_side_of_a_weight_tie_is_refused() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(20, 8), nn.Linear(8, 20, bias=False)
            self.head.weight = self.emb.weight

    model = Tied()
    with pytest.raises(ConfigError, match=r"tied to 'emb\.weight'"):
        lora_convert(model, LoRAConfig(rank=2, targets=("head",)))
    assert type(model.head) is nn.Linear and model.head.weight is model.emb.weight  # left unchanged

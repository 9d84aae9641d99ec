"""Grokking models: weight counts, init scales, the factorised MLP against the plain formula, ensembles."""

from __future__ import annotations

import pytest
import torch

from sparsenets.models.grokking import GrokMLP, GrokTransformer, OmnigrokMLP, stack_models


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_counts_and_init_scales() -> None:
    torch.manual_seed(0)
    mlp, tr, om = GrokMLP(), GrokTransformer(), OmnigrokMLP()
    assert (_count(mlp), _count(tr), _count(om)) == (115_000, 115_456, 198_800)
    assert float(mlp.W_in.detach().std()) == pytest.approx(1 / 500**0.5, rel=0.05)
    assert float(mlp.W_emb.detach().std()) == pytest.approx(1 / 67**0.5, rel=0.05)
    assert float(om.weights[0].detach().std()) == pytest.approx(8 / 784**0.5, rel=0.05)


def test_mlp_matches_plain_formula_and_onehot_input() -> None:
    torch.manual_seed(0)
    m = GrokMLP(p=11, d_emb=20, hidden=7).double()
    x = torch.tensor([[0, 1], [3, 3], [10, 4]])
    emb = m.W_emb.T  # (p, d_emb)
    plain = torch.relu((emb[x[:, 0]] + emb[x[:, 1]]) @ m.W_in.T) @ m.W_out.T @ m.W_unemb.T
    assert torch.allclose(m(x), plain)
    onehot = torch.nn.functional.one_hot(x, 11).double()
    assert torch.allclose(m(onehot), plain)


def test_transformer_last_position_matches_full_causal_attention() -> None:
    torch.manual_seed(0)
    t = GrokTransformer(p=7, d_model=8, d_mlp=6).double()
    x = torch.tensor([[1, 2], [5, 0]])
    res = t.W_E.T[x]  # (B, 2, d)
    q, k, v = res @ t.W_Q.T, res @ t.W_K.T, res @ t.W_V.T
    scores = q @ k.transpose(1, 2) / 8**0.5
    scores = scores.masked_fill(torch.triu(torch.ones(2, 2, dtype=torch.bool), 1), float("-inf"))
    r = res + torch.softmax(scores, -1) @ v @ t.W_O.T
    r = r + torch.relu(r @ t.W_in.T) @ t.W_out.T
    assert torch.allclose(t(x), (r @ t.W_U.T)[:, -1])


@pytest.mark.parametrize("cls", [GrokMLP, GrokTransformer, OmnigrokMLP])
def test_stacked_members_equal_single_models(cls) -> None:
    small = {
        GrokMLP: {"p": 7, "d_emb": 9, "hidden": 5},
        GrokTransformer: {"p": 7, "d_model": 6, "d_mlp": 5},
        OmnigrokMLP: {"widths": (12, 6, 3)},
    }[cls]
    models = []
    for s in range(3):
        torch.manual_seed(s)
        models.append(cls(**small))
    ens = stack_models(models)
    x = torch.randn(4, 12) if cls is OmnigrokMLP else torch.randint(0, 7, (4, 2))
    out = ens(x)
    assert out.shape[0] == 3
    for e, m in enumerate(models):
        assert torch.allclose(out[e], m(x), atol=1e-6)

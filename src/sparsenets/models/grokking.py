"""The grokking-tickets models: the paper's MLP, a 1-layer transformer, and the Omnigrok MNIST MLP.

Every model takes `ensemble=E` to hold E independent networks as stacked weights (E, ...): one batched matmul then
trains E seeds or controls at once, which is what makes the full study fit in minutes on a CPU. Without `ensemble`
the weights have their plain shapes. `stack_models([m0, m1, ...])` builds an ensemble whose member e equals m_e.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.errors import SparsenetsError


def _normal(ensemble: int | None, shape: Sequence[int], std: float) -> nn.Parameter:
    full = (ensemble, *shape) if ensemble is not None else tuple(shape)
    return nn.Parameter(torch.randn(full) * std)


class _Stackable(nn.Module):
    """Shared plumbing: lift single-network weights to a leading ensemble axis and drop it again."""

    ensemble: int | None

    def _w(self, name: str) -> torch.Tensor:
        w = getattr(self, name)
        return w if self.ensemble is not None else w.unsqueeze(0)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.ensemble is not None else y.squeeze(0)


class GrokMLP(_Stackable):
    """The paper's MLP: logits = W_unemb W_out ReLU(W_in (W_emb e_a + W_emb e_b)); no biases, all weights prunable.

    Shapes (plain): W_emb (d_emb, p), W_in (hidden, d_emb), W_out (d_emb, hidden), W_unemb (p, d_emb); init
    N(0, 1/fan_in). p=67, d_emb=500, hidden=48 gives 115,000 weights. The products W_in W_emb and W_unemb W_out are
    formed first (mathematically the same network, ~20× fewer flops for a 67-token vocabulary).

    Args:
        p: vocabulary (the modulus) and number of classes.
        d_emb: embedding width.
        hidden: hidden width.
        ensemble: hold this many independent networks (weights (E, ...)).
    """

    def __init__(self, p: int = 67, d_emb: int = 500, hidden: int = 48, ensemble: int | None = None) -> None:
        super().__init__()
        self.p, self.d_emb, self.hidden, self.ensemble = p, d_emb, hidden, ensemble
        self.W_emb = _normal(ensemble, (d_emb, p), 1 / math.sqrt(p))
        self.W_in = _normal(ensemble, (hidden, d_emb), 1 / math.sqrt(d_emb))
        self.W_out = _normal(ensemble, (d_emb, hidden), 1 / math.sqrt(hidden))
        self.W_unemb = _normal(ensemble, (p, d_emb), 1 / math.sqrt(d_emb))

    def config(self) -> dict[str, int]:
        """Constructor arguments except `ensemble`."""
        return {"p": self.p, "d_emb": self.d_emb, "hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, 2) operand pairs, or float (B, 2, p) soft one-hots (SynFlow's all-ones input).

        Returns:
            logits (B, p), or (E, B, p) for an ensemble.
        """
        a_in = torch.matmul(self._w("W_in"), self._w("W_emb"))  # (E, hidden, p)
        if x.dtype in (torch.int64, torch.int32):
            pre = a_in[:, :, x[:, 0]] + a_in[:, :, x[:, 1]]  # (E, hidden, B)
        else:
            pre = torch.matmul(a_in, (x[:, 0] + x[:, 1]).to(a_in.dtype).T)
        u = torch.matmul(self._w("W_unemb"), self._w("W_out"))  # (E, p, hidden)
        return self._out(torch.matmul(u, torch.relu(pre)).transpose(1, 2))


class GrokTransformer(_Stackable):
    """1-layer, 1-head transformer of the reference code: no LayerNorm, biases or positional embedding; causal.

    Input (a, b) as two tokens; the logits are read at the last position, so only that position is computed (with
    one layer, position 0's output never reaches position 1). d_model=128, d_mlp=128, p=67: 115,456 weights.
    Init: attention and MLP N(0, 1/d_model), W_E N(0, 1/p), W_U N(0, 1/d_model).

    Args:
        p: vocabulary and classes.
        d_model: residual width (= the head width, one head).
        d_mlp: MLP hidden width.
        ensemble: hold this many independent networks.
    """

    def __init__(
        self, p: int = 67, d_model: int = 128, d_mlp: int = 128, ensemble: int | None = None
    ) -> None:
        super().__init__()
        self.p, self.d_model, self.d_mlp, self.ensemble = p, d_model, d_mlp, ensemble
        s = 1 / math.sqrt(d_model)
        self.W_E = _normal(ensemble, (d_model, p), 1 / math.sqrt(p))
        self.W_Q, self.W_K, self.W_V, self.W_O = (_normal(ensemble, (d_model, d_model), s) for _ in range(4))
        self.W_in = _normal(ensemble, (d_mlp, d_model), s)
        self.W_out = _normal(ensemble, (d_model, d_mlp), s)
        self.W_U = _normal(ensemble, (p, d_model), s)

    def config(self) -> dict[str, int]:
        """Constructor arguments except `ensemble`."""
        return {"p": self.p, "d_model": self.d_model, "d_mlp": self.d_mlp}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, 2) tokens, or float (B, 2, p) soft one-hots. Returns logits (B, p) or (E, B, p)."""
        w_e = self._w("W_E")  # (E, d, p)
        if x.dtype in (torch.int64, torch.int32):
            res = w_e[:, :, x].permute(0, 2, 3, 1)  # (E, B, 2, d)
        else:
            res = torch.einsum("edp,btp->ebtd", w_e, x.to(w_e.dtype))
        q = torch.einsum("ebd,ehd->ebh", res[:, :, 1], self._w("W_Q"))  # the last position's query
        k = torch.einsum("ebtd,ehd->ebth", res, self._w("W_K"))
        v = torch.einsum("ebtd,ehd->ebth", res, self._w("W_V"))
        att = torch.softmax(torch.einsum("ebh,ebth->ebt", q, k) / math.sqrt(self.d_model), dim=-1)
        z = torch.einsum("ebt,ebth->ebh", att, v)
        r = res[:, :, 1] + torch.einsum("ebh,edh->ebd", z, self._w("W_O"))
        r = r + torch.einsum(
            "ebm,edm->ebd", F.relu(torch.einsum("ebd,emd->ebm", r, self._w("W_in"))), self._w("W_out")
        )
        return self._out(torch.einsum("ebd,epd->ebp", r, self._w("W_U")))


class OmnigrokMLP(_Stackable):
    """Omnigrok's MNIST MLP: Flatten → [Linear (no bias) → ReLU]* → Linear, init N(0, (scale)²/fan_in).

    Default 784→200→200→10 with scale 8 (the large init that causes grokking): 198,800 weights.

    Args:
        widths: layer widths from input to output.
        init_scale: multiplier of the 1/√fan_in standard deviation.
        ensemble: hold this many independent networks.
    """

    def __init__(
        self,
        widths: Sequence[int] = (784, 200, 200, 10),
        init_scale: float = 8.0,
        ensemble: int | None = None,
    ) -> None:
        super().__init__()
        if len(widths) < 2:
            raise SparsenetsError(f"OmnigrokMLP needs at least input and output widths, got {list(widths)}")
        self.widths, self.init_scale, self.ensemble = tuple(widths), init_scale, ensemble
        self.weights = nn.ParameterList(
            _normal(ensemble, (o, i), init_scale / math.sqrt(i)) for i, o in itertools.pairwise(widths)
        )

    def config(self) -> dict[str, object]:
        """Constructor arguments except `ensemble`."""
        return {"widths": self.widths, "init_scale": self.init_scale}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, ...) flattened to (B, widths[0]); returns (B, classes) or (E, B, classes)."""
        h = x.reshape(x.shape[0], -1).T.unsqueeze(0)  # (1, in, B), broadcast over the ensemble
        for i, w in enumerate(self.weights):
            h = torch.matmul(w if self.ensemble is not None else w.unsqueeze(0), h)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return self._out(h.transpose(1, 2))


def stack_models(models: Sequence[nn.Module]) -> nn.Module:
    """An ensemble whose member e holds exactly the weights of `models[e]` (all of one class and config)."""
    if not models:
        raise SparsenetsError("stack_models needs at least one model")
    first = models[0]
    if any(type(m) is not type(first) or m.config() != first.config() for m in models):
        raise SparsenetsError("stack_models needs models of one class and one configuration")
    out = type(first)(**first.config(), ensemble=len(models))
    with torch.no_grad():
        for name, p in out.named_parameters():
            p.copy_(torch.stack([dict(m.named_parameters())[name].detach() for m in models]))
    return out

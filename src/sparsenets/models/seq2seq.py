"""A small encoder–decoder transformer for translation, Euclidean or with Lorentz (hyperbolic) MLP blocks.

Linears are named q, k, v, o (self- and cross-attention) and fc1, fc2 (MLP); in the hyperbolic variant fc1/fc2
are `LorentzLinear`s, whose Euclidean maps are called `linear`. The hyperbolic variant is a hybrid: attention
and residual stream stay Euclidean; each MLP maps its input onto the hyperboloid (expmap0), applies two Lorentz
linear layers and maps back (logmap0). It is not the fully hyperbolic HyboNet transformer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sparsenets.models.lorentz import LorentzLinear, expmap0, logmap0


class Attention(nn.Module):
    """Multi-head attention with q, k, v, o projections; self-attention when `memory` is None."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, T, d), memory (B, S, d) or None, mask bool (B, 1, T, S) True = attend → (B, T, d)."""
        src = x if memory is None else memory
        b, t, d = x.shape
        h = self.heads

        def split(z: torch.Tensor) -> torch.Tensor:
            return z.view(b, -1, h, d // h).transpose(1, 2)

        y = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(src)), split(self.v(src)), attn_mask=mask
        )
        return self.o(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """fc2(gelu(fc1(x))): (…, d) → (…, d)."""

    def __init__(self, d: int, mlp: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class LorentzFeedForward(nn.Module):
    """logmap0(fc2(fc1(expmap0(x)))) with Lorentz linear layers (ReLU on the space part between them)."""

    def __init__(self, d: int, mlp: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = LorentzLinear(d + 1, mlp + 1), LorentzLinear(mlp + 1, d + 1, nonlin=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logmap0(self.fc2(self.fc1(expmap0(x))))


class Layer(nn.Module):
    """Pre-norm encoder (cross=False) or decoder (cross=True) layer."""

    def __init__(self, d: int, heads: int, mlp: int, cross: bool, hyperbolic: bool) -> None:
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.cross_attn = Attention(d, heads) if cross else None
        self.ff = LorentzFeedForward(d, mlp) if hyperbolic else FeedForward(d, mlp)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3 if cross else 2))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        memory: torch.Tensor | None = None,
        mem_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.norms[0](x), mask=mask)
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norms[1](x), memory, mem_mask)
        return x + self.ff(self.norms[-1](x))


class Seq2SeqTransformer(nn.Module):
    """Encoder–decoder transformer with learned positions; pad id 0.

    Args:
        src_vocab, tgt_vocab: vocabulary sizes; d, heads, layers, mlp: sizes; max_len: longest sequence;
        hyperbolic: use Lorentz MLP blocks.
    """

    def __init__(
        self,
        src_vocab: int,
        tgt_vocab: int,
        d: int = 128,
        heads: int = 4,
        layers: int = 2,
        mlp: int = 256,
        max_len: int = 64,
        hyperbolic: bool = False,
    ) -> None:
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(src_vocab, d), nn.Embedding(tgt_vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.encoder = nn.ModuleList(Layer(d, heads, mlp, False, hyperbolic) for _ in range(layers))
        self.decoder = nn.ModuleList(Layer(d, heads, mlp, True, hyperbolic) for _ in range(layers))
        self.ln_enc, self.ln_dec = nn.LayerNorm(d), nn.LayerNorm(d)
        for emb in (self.src_emb, self.tgt_emb, self.pos):
            nn.init.normal_(emb.weight, std=0.02)

    def _embed(self, emb: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        return emb(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) → memory (B, S, d) and its key mask (B, 1, 1, S)."""
        key_mask = (src != 0)[:, None, None, :]
        x = self._embed(self.src_emb, src)
        for layer in self.encoder:
            x = layer(x, key_mask)
        return self.ln_enc(x), key_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, mem_mask: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) → logits (B, T, tgt_vocab) (tied output embedding)."""
        t = tgt_in.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()[None, None]
        x = self._embed(self.tgt_emb, tgt_in)
        for layer in self.decoder:
            x = layer(x, causal, memory, mem_mask)
        return self.ln_dec(x) @ self.tgt_emb.weight.T

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """(B, S), (B, T) → logits (B, T, tgt_vocab)."""
        memory, mem_mask = self.encode(src)
        return self.decode(tgt_in, memory, mem_mask)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, bos: int, eos: int, max_len: int) -> torch.Tensor:
        """Greedy decoding: (B, S) → (B, ≤ max_len) token ids after BOS (EOS and later left in place)."""
        memory, mem_mask = self.encode(src)
        out = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            nxt = self.decode(out, memory, mem_mask)[:, -1].argmax(-1)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done |= nxt == eos
            if bool(done.all()):
                break
        return out[:, 1:]

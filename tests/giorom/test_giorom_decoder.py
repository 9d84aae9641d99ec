"""Spec sanity tests 4 (shift) and 7: decoders reproduce the sparse points, agree across subsets, converge in M."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsenets.giorom as giorom
from sparsenets.errors import SparsenetsError
from sparsenets.train import Trainer
from tests.giorom.synthetic import lattice

torch.set_num_threads(1)
BOX = ((0.0, 1.0), (0.0, 1.0))


def deform(x: torch.Tensor, t: float = 1.0) -> torch.Tensor:
    """A smooth deformation of the reference coordinates [K, 2] -> [K, 2] (swirl plus a stretch)."""
    u = torch.stack([torch.sin(2 * math.pi * x[:, 1]), torch.sin(math.pi * x[:, 0]) * x[:, 1]], dim=-1)
    return x + 0.03 * t * u


def dense_set(n: int = 4096, seed: int = 0) -> torch.Tensor:
    return 0.2 + 0.6 * torch.rand(n, 2, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 80), seed=st.integers(0, 999), k=st.integers(1, 10))
def test_shepard_reproduces_sparse_points_and_shifts_with_them(m, seed, k) -> None:
    ref = dense_set(m, seed).double()
    x = deform(ref)
    dec = giorom.ShepardDecoder(k=k)
    assert torch.allclose(dec(ref, x, ref), x, atol=1e-12)
    queries = dense_set(50, seed + 1).double()
    shift = torch.tensor([0.013, -0.021], dtype=torch.float64)
    assert torch.allclose(dec(ref, x + shift, queries), dec(ref, x, queries) + shift, atol=1e-12)


def test_kernel_decoder_at_init_reproduces_well_separated_sparse_points() -> None:
    # grid 64 on [0, 1]: cells of 1/63; sparse points 2.5 cells apart share no cell corner, so the splat-then-read
    # at a point's own X returns that point's u exactly (its weights cancel in the Shepard division)
    cfg = giorom.DecoderConfig(bounds=BOX, grid=64, smoothing=0.0)
    dec = giorom.KernelDecoder(cfg)
    ref = lattice(9, lo=0.2, hi=0.2 + 8 * 2.5 / 63).float() + 0.3 / 63
    x = deform(ref)
    with torch.no_grad():
        assert torch.allclose(dec(ref, x, ref), x, atol=1e-6)
        shift = torch.tensor([0.01, 0.02])
        q = 0.21 + 0.3 * torch.rand(100, 2, generator=torch.Generator().manual_seed(0))
        smooth = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=32, smoothing=1.5))
        assert torch.allclose(smooth(ref, x + shift, q), smooth(ref, x, q) + shift, atol=1e-6)


def test_error_falls_as_m_rises_and_subsets_and_query_counts_agree() -> None:
    dense = dense_set(4096)
    x = deform(dense)
    g = torch.Generator().manual_seed(1)
    dec = giorom.ShepardDecoder(k=6)

    def error(ids: torch.Tensor, queries: torch.Tensor) -> float:
        return float(((dec(dense[ids], x[ids], dense[queries]) - x[queries]) ** 2).sum(-1).mean())

    all_q = torch.arange(4096)
    errs = [error(torch.randperm(4096, generator=g)[:m], all_q) for m in (64, 256, 1024)]
    assert errs[0] > 2 * errs[1] > 4 * errs[2], errs
    # a spread-out subset (one point per cell of a 16 x 16 grid) against a random one of the same size
    cell = ((dense - 0.2) / 0.6 * 16).long().clamp(0, 15)
    key = cell[:, 0] * 16 + cell[:, 1]
    spread = torch.stack([(key == c).nonzero()[0, 0] for c in key.unique()])
    rand = torch.randperm(4096, generator=g)[: spread.numel()]
    e_spread, e_rand = error(spread, all_q), error(rand, all_q)
    assert 0.25 < e_spread / e_rand < 4.0, (e_spread, e_rand)
    ids = torch.randperm(4096, generator=g)[:256]
    fine, coarse = dense_set(10_000, 7), dense_set(1000, 8)  # 10k vs 1k fresh queries: the same error
    e10k = float(((dec(dense[ids], x[ids], fine) - deform(fine)) ** 2).sum(-1).mean())
    e1k = float(((dec(dense[ids], x[ids], coarse) - deform(coarse)) ** 2).sum(-1).mean())
    assert abs(e10k / e1k - 1) < 0.25, (e10k, e1k)


def test_trained_kernel_decoder_beats_its_untrained_start_and_keeps_the_sparse_points() -> None:
    torch.manual_seed(0)
    dense = dense_set(2048)
    frames = torch.stack([deform(dense, t) for t in torch.linspace(0, 1, 8).tolist()])[None]  # [1, 8, N, 2]
    ids = torch.randperm(2048, generator=torch.Generator().manual_seed(2))[:256]
    dec = giorom.KernelDecoder(
        giorom.DecoderConfig(bounds=BOX, grid=32, smoothing=1.0, hidden=32, scale=0.03)
    )
    batches = giorom.DecoderBatches(frames, ids, n_query=512)
    probe = [batches(10_000 + i) for i in range(4)]
    with torch.no_grad():
        before = sum(float(giorom.decoder_loss(dec, s)) for s in probe)
    Trainer(
        dec, torch.optim.Adam(dec.parameters(), 1e-2), batches, giorom.decoder_loss, 200, progress=False
    ).fit()
    with torch.no_grad():
        after = sum(float(giorom.decoder_loss(dec, s)) for s in probe)
        own = dec(dense[ids], frames[0, -1, ids], dense[ids])
    assert after < 0.7 * before, (before, after)  # the residual MLP improves on the grid Shepard estimate
    spacing2 = 0.6**2 / 256  # squared mean spacing of the sparse points
    # rms error under 10 % of a spacing
    assert float(((own - frames[0, -1, ids]) ** 2).sum(-1).mean()) < 1e-2 * spacing2


@pytest.mark.parametrize("d", [2, 3])
def test_grid_smoothing_equals_a_direct_gaussian_sum(d: int) -> None:
    g = 12 if d == 2 else 7
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=((0.0, 1.0),) * d, grid=g, smoothing=1.3))
    grid = torch.rand(g**d, 3, generator=torch.Generator().manual_seed(d))
    axes = torch.meshgrid(*([torch.arange(g)] * d), indexing="ij")
    ij = torch.stack(axes, -1).reshape(-1, d).float()  # row-major: axis k has stride g^(d-1-k)
    off = ij[:, None, :] - ij[None, :, :]  # [target, source, d] offsets in cells
    w = torch.exp(-0.5 * (off / 1.3) ** 2) * (off.abs() <= 4)  # 4 = ceil(3σ) cells
    want = w.prod(-1) @ grid
    assert torch.allclose(dec._smooth(grid), want, atol=1e-5)


@pytest.mark.parametrize("d", [2, 3])
def test_grid_read_equals_a_direct_multilinear_interpolation(d: int) -> None:
    g = 5
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=((0.0, 2.0),) * d, grid=g, smoothing=0.0))
    gen = torch.Generator().manual_seed(d)
    grid = torch.rand(g**d, 3, generator=gen, dtype=torch.float64)
    queries = 2.0 * torch.rand(30, d, generator=gen, dtype=torch.float64)
    s = queries / 2.0 * (g - 1)  # grid coordinates, axis k of the flat index has stride g^(d-1-k)
    want = torch.zeros(30, 3, dtype=torch.float64)
    for corner in itertools.product((0, 1), repeat=d):
        c = torch.tensor(corner)
        base = s.floor().clamp(0, g - 2)
        w = torch.where(c.bool(), s - base, 1 - (s - base)).prod(-1, keepdim=True)
        flat = ((base.long() + c) * torch.tensor([g ** (d - 1 - k) for k in range(d)])).sum(-1)
        want += w * grid[flat]
    assert torch.allclose(dec.double()._read(grid, queries), want, atol=1e-12)


def test_kernel_decoder_works_in_3d() -> None:
    box = ((0.0, 1.0),) * 3
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=box, grid=16, smoothing=0.0))
    axis = torch.tensor([0.2, 0.5, 0.8]) + 0.01
    ref = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    x = ref + 0.02 * torch.sin(3 * ref)
    with torch.no_grad():
        assert torch.allclose(dec(ref, x, ref), x, atol=1e-6)
        smooth = giorom.KernelDecoder(giorom.DecoderConfig(bounds=box, grid=16, smoothing=2.0))
        assert smooth(ref, x, torch.rand(50, 3) * 0.6 + 0.2).shape == (50, 3)


def test_queries_outside_the_reference_box_are_refused() -> None:
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=16))
    ref = dense_set(20)
    with pytest.raises(SparsenetsError, match="query points lie outside"):
        dec(ref, ref, torch.tensor([[0.5, 1.2]]))
    with pytest.raises(SparsenetsError, match="outside"):
        giorom.ShepardDecoder(bounds=BOX)(ref, ref, torch.tensor([[-0.1, 0.5]]))
    bad = ref.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(SparsenetsError, match="NaN"):
        dec(ref, bad, ref)


def test_shepard_weights_stay_finite_for_near_hits_and_high_powers() -> None:
    ref = torch.tensor([[0.5, 0.5], [0.6, 0.5]])
    x = ref + torch.tensor([[0.01, 0.0], [0.03, 0.0]])
    q = torch.tensor([[0.5 + 1e-9, 0.5]])  # close to the first point, not on it
    out = giorom.ShepardDecoder(k=2, power=6.0)(ref, x, q)
    assert torch.isfinite(out).all() and torch.allclose(out, q + torch.tensor([0.01, 0.0]), atol=1e-6)


def test_a_bound_decoder_follows_weight_updates_and_backpropagates() -> None:
    """A bound decoder must give what a fresh binding gives after an optimiser step, and two backward passes
    through one binding must both work."""
    torch.manual_seed(0)
    dec = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=16, scale=0.05))
    for p in dec.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ref, queries = lattice(8).float(), dense_set(300)
    pos = deform(ref)
    bound = dec.bind(ref, queries)
    with torch.no_grad():
        before = bound(pos)
        assert torch.equal(before, bound(pos))  # a binding is deterministic
    opt = torch.optim.SGD(dec.parameters(), lr=0.5)
    for _ in range(2):  # two backward passes through the same bound decoder
        opt.zero_grad()
        (bound(pos) - queries).pow(2).sum().backward()
        assert dec.first.weight.grad is not None and dec.first.weight.grad.abs().sum() > 0
        opt.step()
    with torch.no_grad():
        after, fresh = bound(pos), dec.bind(ref, queries)(pos)
    assert not torch.allclose(after, before)
    assert torch.equal(after, fresh)


@pytest.mark.parametrize("kind", ["kernel", "shepard"])
def test_rollout_decodes_each_step_as_a_direct_call_would(kind: str) -> None:
    """A rollout binds its decoder once; every decoded frame must equal `decoder(reference, x_t, queries)`."""
    torch.manual_seed(1)
    ref = lattice(6).float()
    stats = giorom.Statistics((0.0, 0.0), (1e-3, 1e-3), (0.0, 0.0), (1e-4, 1e-4))
    model = giorom.Stepper(giorom.StepperConfig(stats, BOX, radius=0.3, history=1))
    if kind == "kernel":
        decoder = giorom.KernelDecoder(giorom.DecoderConfig(bounds=BOX, grid=16, scale=0.05))
        torch.nn.init.normal_(decoder.out.weight, std=0.1)
    else:
        decoder = giorom.ShepardDecoder(k=4)
    queries = dense_set(500)
    x_hist = torch.stack([ref, ref + 1e-3], dim=1)
    run = giorom.rollout(model, x_hist, 4, decoder=decoder, reference=ref, queries=queries)
    assert run.bind_s > 0 and len(run.times["decoder"]) == 4
    with torch.no_grad():
        direct = torch.stack([decoder(ref, p, queries) for p in run.positions])
    assert torch.allclose(run.dense, direct, atol=1e-6)

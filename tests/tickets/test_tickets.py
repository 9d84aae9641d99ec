"""Tickets: exact-count pruning, random/shuffled controls, PaI scores against brute force, IMP and rewinding."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import GroupLayout
from sparsenets.masks import HoldMasks, density
from sparsenets.tickets import (
    first_crossing,
    grasp_scores,
    grokking_times,
    iterative_magnitude_pruning,
    kept_count,
    level_keep,
    magnitude_scores,
    norm_ratio,
    prune_by_scores,
    prune_members,
    random_masks,
    rewind_,
    shuffle_masks,
    snapshot,
    snip_scores,
    synflow_masks,
)
from sparsenets.train import TensorBatches, Trainer


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=4),
    rate=st.floats(0.0, 0.99),
    scope=st.sampled_from(["global", "layer"]),
    seed=st.integers(0, 10_000),
)
def test_prune_keeps_exact_count_of_the_largest(shapes, rate, scope, seed) -> None:
    g = torch.Generator().manual_seed(seed)
    scores = {f"t{i}": torch.randn(s, generator=g) for i, s in enumerate(shapes)}
    masks = prune_by_scores(scores, keep=1.0 - rate, scope=scope)
    units = [list(scores)] if scope == "global" else [[k] for k in scores]
    for names in units:
        n = sum(scores[k].numel() for k in names)
        kept = torch.cat([scores[k][masks[k]] for k in names])
        dropped = torch.cat([scores[k][~masks[k]] for k in names])
        assert kept.numel() == round((1.0 - rate) * n)  # the count a pruning rate gave before keep=
        if kept.numel() and dropped.numel():
            assert (
                kept.min() >= dropped.max()
            )  # brute-force certificate: every survivor beats every pruned one


def test_prune_rejects_bad_input() -> None:
    for bad in (0.0, 1.5, -0.1, 0, True, "0.5"):
        with pytest.raises(SparsenetsError, match="keep"):
            prune_by_scores({"a": torch.ones(3)}, bad)
    with pytest.raises(SparsenetsError, match="scope"):
        prune_by_scores({"a": torch.ones(3)}, 0.5, scope="row")
    with pytest.raises(SparsenetsError, match="keep_per_level"):
        level_keep(2, 1)


def test_keep_is_a_fraction_or_a_count() -> None:
    assert [kept_count(7, 1.0), kept_count(10, 0.4), kept_count(10, 3)] == [
        7,
        4,
        3,
    ]  # the library's one budget
    s = {"a": torch.arange(6.0), "b": torch.arange(4.0)}
    assert sum(int(m.sum()) for m in prune_by_scores(s, 3).values()) == 3  # a count over the whole model
    assert [int(m.sum()) for m in prune_by_scores(s, 3, scope="layer").values()] == [3, 3]
    assert all(bool(m.all()) for m in prune_by_scores(s, 1.0).values())  # keep 1.0 = nothing pruned
    assert level_keep(0.8, 3) == pytest.approx(0.512)


def _rows(scores: dict[str, torch.Tensor]) -> list[GroupLayout]:
    return [GroupLayout.of_tensor(n, t, "filter") for n, t in scores.items()]


def test_current_masks_stay_pruned_and_rows_prune_whole_rows() -> None:
    g = torch.Generator().manual_seed(0)
    s = {"w": torch.rand(10, 10, generator=g)}
    first = prune_by_scores(s, 0.5)
    second = prune_by_scores({"w": torch.rand(10, 10, generator=g)}, 0.2, current=first)
    assert int(second["w"].sum()) == 20 and not bool((second["w"] & ~first["w"]).any())
    rows = prune_by_scores(s, 0.7, groups=_rows(s))
    row_kept = rows["w"].all(1)
    assert int(row_kept.sum()) == 7 and bool((rows["w"].any(1) == row_kept).all())
    top = s["w"].sum(1).argsort(descending=True)[:7]
    assert bool(row_kept[top].all())
    again = prune_by_scores(s, 0.5, current=rows, groups=_rows(s))  # pruned rows rank last: they go first
    assert int(again["w"].all(1).sum()) == 5 and not bool((again["w"] & ~rows["w"]).any())


def test_group_layouts_prune_whole_filters_with_their_bias() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    layout = GroupLayout.of_layer(model, "0", "filter")
    scores = magnitude_scores({"0.weight": model[0].weight})
    masks = prune_by_scores(scores, 0.5, groups=[layout])
    rows = prune_by_scores(scores, 0.5, groups=_rows(scores))
    assert torch.equal(masks["0.weight"], rows["0.weight"])
    assert torch.equal(masks["0.bias"], rows["0.weight"].all(1))  # the bias of a pruned filter goes with it
    assert int(masks["0.weight"].all(1).sum()) == 4


def test_layer_scope_over_layouts_and_shared_slices() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    scores = magnitude_scores({n: p for n, p in model.named_parameters() if n.endswith("weight")})
    lays = [GroupLayout.of_layer(model, "0", "filter"), GroupLayout.of_layer(model, "2", "filter")]
    per = prune_by_scores(scores, 0.5, scope="layer", groups=lays)
    assert [int(per[n].all(1).sum()) for n in ("0.weight", "2.weight")] == [4, 2]  # half of each layout
    glob = prune_by_scores(scores, 0.5, groups=lays)
    assert sum(int(glob[n].all(1).sum()) for n in ("0.weight", "2.weight")) == 6  # half of all 12 groups
    # layer 2's weight in two layouts (its rows, its columns): a slice stays only if both keep it
    both = [GroupLayout.of_layer(model, "2", "filter"), GroupLayout.of_layer(model, "2", "channel")]
    w = {"2.weight": scores["2.weight"]}
    m = prune_by_scores(w, 0.5, scope="layer", groups=both)["2.weight"]
    rows = prune_by_scores(w, 0.5, groups=both[:1])["2.weight"]
    cols = prune_by_scores(w, 0.5, groups=both[1:])["2.weight"]
    assert torch.equal(m, rows & cols)


def test_stacked_networks_are_pruned_independently() -> None:
    g = torch.Generator().manual_seed(0)
    s = {"a": torch.rand(3, 4, 5, generator=g), "b": torch.rand(3, 6, generator=g)}
    stacked = prune_members(s, 0.4)
    for e in range(3):
        alone = prune_by_scores({k: v[e] for k, v in s.items()}, 0.4)
        assert all(torch.equal(stacked[k][e], alone[k]) for k in s)


def test_random_and_shuffled_masks_match_densities() -> None:
    g = torch.Generator().manual_seed(0)
    shapes = {"a": (20, 30), "b": (30, 5)}
    magnitude = prune_by_scores(
        {k: torch.rand(v, generator=g) * (1 + i * 5) for i, (k, v) in enumerate(shapes.items())}, 0.4
    )
    rnd = random_masks(shapes, 0.4, generator=g)
    assert sum(int(m.sum()) for m in rnd.values()) == sum(int(m.sum()) for m in magnitude.values())
    per_layer = random_masks(shapes, 0.4, scope="layer", generator=g)
    assert [int(m.sum()) for m in per_layer.values()] == [240, 60]
    shuf = shuffle_masks(magnitude, scope="layer", generator=g)
    assert [int(m.sum()) for m in shuf.values()] == [int(m.sum()) for m in magnitude.values()]
    assert not all(torch.equal(shuf[k], magnitude[k]) for k in shapes)  # a real permutation, not a no-op
    glob = shuffle_masks(magnitude, scope="global", generator=g)
    assert density(glob) == pytest.approx(density(magnitude))


def test_norm_ratio_matches_definition() -> None:
    g = torch.Generator().manual_seed(0)
    init = {"a": torch.randn(8, 8, generator=g), "b": torch.randn(4, 8, generator=g)}
    masks = prune_by_scores(magnitude_scores(init), 0.4)
    for p in (1.0, 2.0):
        r = norm_ratio(init, masks, p)
        scaled = torch.cat([(r * init[k]).reshape(-1) for k in init])
        kept = torch.cat([(init[k] * masks[k]).reshape(-1) for k in init])
        assert float(torch.linalg.vector_norm(scaled, p)) == pytest.approx(
            float(torch.linalg.vector_norm(kept, p))
        )
    assert norm_ratio(init, masks, 2, per_tensor_sum=True) != pytest.approx(
        norm_ratio(init, masks, 2), abs=1e-9
    )


def _tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.Tanh(), nn.Linear(5, 3, bias=False)).double()
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(7, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (7,), generator=g)


def test_snip_and_grasp_against_finite_differences() -> None:
    net, x, y = _tiny()
    names = ["0.weight", "2.weight"]

    def loss(m: nn.Module) -> torch.Tensor:
        return F.cross_entropy(m(x), y)

    params = dict(net.named_parameters())
    g0 = torch.autograd.grad(loss(net), [params[n] for n in names])
    snip = snip_scores(net, loss, names)
    assert torch.allclose(snip["0.weight"], (g0[0] * params["0.weight"]).abs())
    # Hg by central differences of the gradient along g: (∇L(θ + εg) − ∇L(θ − εg)) / 2ε
    eps = 1e-5
    grads = []
    for sign in (1, -1):
        with torch.no_grad():
            for n, gg in zip(names, g0):
                params[n].add_(sign * eps * gg)
        grads.append(torch.autograd.grad(loss(net), [params[n] for n in names]))
        with torch.no_grad():
            for n, gg in zip(names, g0):
                params[n].sub_(sign * eps * gg)
    grasp = grasp_scores(net, loss, names)
    for i, n in enumerate(names):
        hg = (grads[0][i] - grads[1][i]) / (2 * eps)
        assert torch.allclose(grasp[n], hg * params[n], atol=1e-7)


def test_synflow_one_round_matches_closed_form_and_reaches_density() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    ones = lambda m: m(torch.ones(1, 4, dtype=torch.float64))  # noqa: E731
    w1, w2 = net[0].weight.detach().abs().double(), net[2].weight.detach().abs().double()
    # R = 1ᵀ|W2||W1|1: score(W1_ij) = (1ᵀ|W2|)_i |W1_ij|, score(W2_ki) = |W2_ki| (|W1| 1)_i
    s1 = w2.sum(0)[:, None] * w1
    s2 = w2 * w1.sum(1)[None, :]
    expect = prune_by_scores({"0.weight": s1, "2.weight": s2}, 0.5)
    got = synflow_masks(net, ones, ["0.weight", "2.weight"], 0.5, rounds=1)
    assert all(torch.equal(got[k], expect[k]) for k in got)
    many = synflow_masks(net, ones, ["0.weight", "2.weight"], 0.3, rounds=20)
    assert sum(int(m.sum()) for m in many.values()) == round(0.3 * 35)
    assert torch.equal(net[0].weight.abs().double(), w1)  # the module itself is untouched


def _train_fn(x: torch.Tensor, y: torch.Tensor, steps: int):
    def train(model: nn.Module, callbacks) -> float:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        Trainer(
            model,
            opt,
            TensorBatches(x, y, batch_size=32, seed=0),
            lambda m, b: F.cross_entropy(m(b[0]), b[1]),
            steps,
            callbacks=callbacks,
            progress=False,
        ).fit()
        with torch.no_grad():
            return float(F.cross_entropy(model(x), y))

    return train


def test_imp_three_levels_exact_sparsity_and_rewind_to_step() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 10, generator=g), torch.randint(0, 4, (128,), generator=g)
    names = ["0.weight", "2.weight"]
    n = 10 * 32 + 32 * 4
    seen = []

    def train(m, callbacks):
        seen.append(snapshot(m))  # the weights each level starts from
        return _train_fn(x, y, 30)(m, callbacks)

    levels = iterative_magnitude_pruning(
        model, train, levels=3, keep_per_level=0.8, rewind_step=5, names=names
    )
    assert [lv.level for lv in levels] == [0, 1, 2, 3]
    for lv in levels[1:]:
        kept = sum(int(m.sum()) for m in lv.masks.values())
        assert abs(kept - level_keep(0.8, lv.level) * n) <= 1  # within one weight
        assert abs(lv.density - 0.8**lv.level) <= 1 / n + 1e-12
    # nested masks: a weight pruned once stays pruned
    for a, b in itertools.pairwise(levels[1:]):
        assert not any(bool((b.masks[k] & ~a.masks[k]).any()) for k in names)
    # every level restarted from the exact step-5 tensors of level 0 (seen[1] = those ⊙ level-1 mask), masked
    assert not torch.equal(seen[0]["0.bias"], seen[1]["0.bias"])  # rewound to step 5, not to init
    for lv, start in zip(levels[2:], seen[2:]):
        for k in names:
            assert torch.equal(start[k], seen[1][k] * lv.masks[k])
    assert torch.equal(seen[1]["0.bias"], seen[2]["0.bias"])  # unpruned tensors rewound bit for bit


def test_rewind_restores_exact_tensors_and_keep1_ticket_is_dense() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 10, generator=g), torch.randint(0, 4, (64,), generator=g)
    init = snapshot(model)
    _train_fn(x, y, 20)(model, [HoldMasks()])
    dense = snapshot(model)
    rewind_(model, init)
    assert all(torch.equal(p, init[k]) for k, p in model.named_parameters())
    levels = iterative_magnitude_pruning(model, _train_fn(x, y, 20), levels=1, keep_per_level=1.0)
    assert levels[1].density == 1.0
    assert all(
        torch.equal(p, dense[k]) for k, p in model.named_parameters()
    )  # keep 1.0 (k = 0) reproduces dense exactly


def test_grokking_times_first_strict_crossing() -> None:
    hist = [
        {"step": s, "train_accuracy": tr, "test_accuracy": te}
        for s, tr, te in [
            (0, 0.1, 0.0),
            (50, 0.95, 0.1),
            (100, 0.96, 0.5),
            (150, 1.0, 0.951),
            (200, 1.0, 1.0),
        ]
    ]
    assert first_crossing(hist, "train_accuracy") == 100  # 0.95 itself is not a crossing
    t = grokking_times(hist)
    assert t == {"t_mem": 100, "t_gen": 150, "tau_grok": 1.5, "gap": 50}
    assert grokking_times(hist[:3])["t_gen"] is None

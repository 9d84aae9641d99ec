"""Sanity tests of Sparsey as a memory: one-shot recall, novelty, SISC, noise, sequences, hierarchy, errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats
from sklearn.metrics import roc_auc_score

from sparsenets.errors import SparsenetsError
from sparsenets.sdr import CSAParams, LabelNodes, LevelSpec, LinearProbe, NearestCode, SparseyNet, UpperLevel
from sparsenets.sdr.patterns import move_bits, occlude, random_patterns

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def stored_net(n_items: int, q: int = 10, k: int = 10, seed: int = 0, **kw: object) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    x = random_patterns(n_items, 144, 18, gen)
    net = SparseyNet.single_mac(144, q, k, seed=seed, **kw)  # type: ignore[arg-type]
    codes = net.learn(x)[0].winners
    return net, x, codes, gen


@pytest.mark.parametrize("device", DEVICES)
def test_one_shot_recall_below_capacity(device: str) -> None:
    net, x, codes, _ = stored_net(15)
    net.to(device)
    r = net.recognise(x.to(device))[0]
    assert torch.equal(r.winners.cpu(), codes)  # exact argmax recall of every item
    assert torch.all(r.g > 0.999)
    assert len({tuple(c.flatten().tolist()) for c in codes}) == 15  # distinct codes


@pytest.mark.parametrize(("preset", "n_items"), [("alt", 5), ("alt-eu10", 30)])
def test_sampling_recall_keeps_most_of_the_code(preset: str, n_items: int) -> None:
    # Crosstalk cells with V near the `alt` inflection (0.424) compete under sampling: only N ≪ capacity
    # keeps >= 0.95·Q with e_U = 1; e_U = 10 suppresses crosstalk.
    net, x, codes, _ = stored_net(n_items, params=CSAParams.preset(preset))
    sampled = net.recognise(x, how="sample")[0].winners
    assert (sampled == codes).float().sum(-1).mean().item() >= 0.95 * 10


def test_sparsey_alt_fixture() -> None:
    # Q = 5, K = 8, 16 inputs, 4 items (spec "dcc-sparsey demos" fixture, Sparsey_Alt: e_U = 10).
    x = torch.zeros(4, 16)
    for i in range(4):
        x[i, 3 * i : 3 * i + 3] = 1
    novel = torch.zeros(1, 16)
    novel[0, 12:] = 1
    net = SparseyNet.single_mac(16, 5, 8, params=CSAParams.preset("alt-eu10"), seed=3)
    codes = net.learn(x)[0].winners
    assert len({tuple(c.flatten().tolist()) for c in codes}) == 4
    r = net.recognise(x)[0]
    assert torch.equal(r.winners, codes)
    assert torch.all(r.g == 1.0)
    assert net.recognise(novel)[0].g.item() == 0.0


def test_novelty_auc() -> None:
    net, x, _, gen = stored_net(20)
    g_old = net.recognise(x)[0].g.flatten()
    g_new = net.recognise(random_patterns(200, 144, 18, gen))[0].g.flatten()
    labels = [1] * len(g_old) + [0] * len(g_new)
    assert roc_auc_score(labels, torch.cat([g_old, g_new]).numpy()) >= 0.95


def test_sisc_code_overlap_rises_with_input_overlap() -> None:
    net, x, codes, gen = stored_net(5)
    k, q, reps = 10, 10, 60
    s_all, o_all, means = [], [], []
    for s in [i / 10 for i in range(11)]:
        y = move_bits(x[:1].repeat(reps, 1), 1 - s, gen)
        w = net.recognise(y, how="sample")[0].winners  # learning-mode selection, nothing stored
        ov = (w == codes[:1]).float().sum(-1).flatten() / q
        s_all += [s] * reps
        o_all += ov.tolist()
        means.append(ov.mean().item())
    assert means[0] < 1 / k + 0.1 and means[-1] > 0.95
    assert all(b >= a - 0.05 for a, b in itertools.pairwise(means)), means
    assert stats.spearmanr(s_all, o_all).statistic >= 0.8


def test_expected_code_overlap_from_rho_matches_many_draws() -> None:
    # The mechanics experiment ranks pairs by the exact expected overlap Σ_q ρ_q(stored winner)/Q; check it
    # against the Monte-Carlo mean of 400 learning-mode draws for probes at several input overlaps.
    net, x, codes, gen = stored_net(5)
    y = torch.cat([move_bits(x[:1], 1 - s, gen) for s in (0.2, 0.4, 0.5, 0.7, 1.0)])
    target = codes[:1].expand(len(y), -1, -1)
    rho = net.recognise(y, how="sample")[0].rho
    exact = rho.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean((-1, -2))
    draws = torch.stack(
        [(net.recognise(y, how="sample")[0].winners == target).float().mean((-1, -2)) for _ in range(400)]
    )
    assert torch.allclose(draws.mean(0), exact, atol=0.03)  # 400 draws of a mean over 10 CMs: s.e. <= 0.008
    assert exact[0] < exact[1] < exact[2] < exact[3] < exact[4]


def test_moved_bits_lower_g_and_occlusion_keeps_it() -> None:
    net, x, codes, gen = stored_net(15)
    g = [net.recognise(move_bits(x, f, gen))[0].g.mean().item() for f in (0.0, 0.2, 0.4, 0.6)]
    assert g[0] > 0.999 and g[0] > g[1] > g[2] > g[3]
    partial = net.recognise(occlude(x, 0.5, gen))[0]
    assert torch.all(partial.g > 0.999)
    assert torch.equal(partial.winners, codes)  # missing evidence is ignored: occlusion recalls the item


@pytest.mark.parametrize(("preset", "n_items"), [("alt", 5), ("alt-eu10", 30)])
def test_representation_changes_few_cells(preset: str, n_items: int) -> None:
    net, x, codes, _ = stored_net(n_items, params=CSAParams.preset(preset))
    again = net.learn(x)[0].winners
    assert (again != codes).float().mean().item() < 0.2


def test_batch_equals_per_item_recognition() -> None:
    net, x, codes, _ = stored_net(12)
    batch = net.recognise(x)[0].winners
    single = torch.cat([net.recognise(x[i : i + 1])[0].winners for i in range(len(x))])
    assert torch.equal(batch, single) and torch.equal(batch, codes)


def test_freezing_stops_learning() -> None:
    gen = torch.Generator().manual_seed(5)
    x = random_patterns(60, 40, 20, gen)
    net = SparseyNet.single_mac(40, 4, 4, freeze_threshold=0.3)
    net.learn(x[:30])
    bundle = net.levels[0].u
    assert bool(bundle.frozen.all())
    before = bundle.weight.clone()
    net.learn(x[30:])
    assert torch.equal(before, bundle.weight)
    assert 0.3 < bundle.set_fraction().item() <= 0.3 + 20 * 4 / (40 * 16)  # one item past the threshold


def test_activation_band_gates_macs() -> None:
    net = SparseyNet.single_mac(20, 3, 3, band=(0.2, 0.5))
    x = torch.zeros(3, 20)
    x[0, :2] = 1  # 10 % active: below the band
    x[1, :6] = 1  # 30 %: inside
    x[2, :12] = 1  # 60 %: above
    r = net.learn(x)[0]
    assert r.active.flatten().tolist() == [False, True, False]
    assert torch.all(r.winners[0] == -1) and torch.all(r.winners[1] >= 0)
    assert net.levels[0].u.weight.sum().item() == 6 * 3  # only the in-band item was stored


def test_sequences_recall_exactly_from_first_element() -> None:
    gen = torch.Generator().manual_seed(6)
    n_seq, length = 6, 5
    frames = random_patterns(n_seq * length, 100, 12, gen).view(n_seq, length, 100)
    net = SparseyNet.single_mac(100, 10, 12, horizontal=True, params=CSAParams.preset("alt-eu10"))
    stored = [torch.stack([r[0].winners for r in net.run_sequence(s[:, None], "learn")]) for s in frames]
    recalled = net.recall_sequence(frames[:, 0], length)
    for t in range(length):
        got = recalled[t][0].winners
        want = torch.stack([s[t, 0] for s in stored])
        assert torch.equal(got, want), t
    # a corrupted first element still finds the stored chain
    noisy = net.recall_sequence(move_bits(frames[:, 0], 0.2, gen), length)
    for t in range(length):
        assert torch.equal(noisy[t][0].winners, torch.stack([s[t, 0] for s in stored])), t


def test_hierarchy_wiring_and_codes() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images[:120] > 8, dtype=torch.float32).reshape(120, 64)
    net = SparseyNet.image_hierarchy(
        8,
        8,
        LevelSpec(4, 8, (0.05, 0.9)),
        patch=4,
        stride=2,
        upper=[UpperLevel(LevelSpec(10, 16, (0.05, 1.0)))],
        params=CSAParams.preset("alt-eu10"),
        seed=1,
    )
    assert [lv.n_macs for lv in net.levels] == [9, 1]
    assert net.levels[1].u.source_size == 9 * 32 and int(net.levels[1].u.max_active[0]) == 9 * 4
    res = net.learn(x)
    l1, l2 = res
    # every active mac has exactly one winner per CM; inactive macs have none
    assert torch.equal(l1.active, (l1.winners >= 0).all(-1)) and torch.equal(
        l1.active, (l1.winners >= 0).any(-1)
    )
    patch_on = net.levels[0].u.gather(x, "U").sum(-1) / 16
    assert torch.equal(l1.active, (patch_on >= 0.05) & (patch_on <= 0.9))
    cells = net.cells(l2, 1)
    assert cells.shape == (120, 160) and torch.all(cells.sum(1) == 10 * l2.active.flatten())
    # L2 weights go exactly from active L1 cells to L2 winners
    w = net.levels[1].u.weight[0]
    l1_cells = net.cells(l1, 0)
    expected = ((l1_cells.T @ cells) > 0).float()
    assert torch.equal(w, expected)
    for lv in net.levels:  # the incremental set-weight count matches a recount
        assert torch.equal(lv.u.n_set, lv.u.weight.sum((1, 2)))


def test_readouts_on_known_codes() -> None:
    codes = torch.eye(6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(NearestCode().fit(codes, labels).predict(codes), labels)
    assert torch.equal(LabelNodes(6, 3).fit(codes, labels).predict(codes), labels)
    assert torch.equal(LinearProbe(6, 3).fit(codes, labels).predict(codes), labels)


def test_bad_input_raises_one_clear_error() -> None:
    net = SparseyNet.single_mac(16, 2, 2)
    with pytest.raises(SparsenetsError, match="16 input units"):
        net.learn(torch.zeros(1, 15))
    with pytest.raises(SparsenetsError, match="binary"):
        net.learn(torch.full((1, 16), 0.5))
    with pytest.raises(SparsenetsError, match="Q and K"):
        SparseyNet.single_mac(16, 0, 4)
    with pytest.raises(SparsenetsError, match="Q and K"):
        SparseyNet.single_mac(16, 4, 0)
    with pytest.raises(SparsenetsError, match="receptive fields"):
        net.levels[0].u.gather(torch.zeros(1, 9), "bottom-up (U)")
    with pytest.raises(SparsenetsError, match="does not fit"):
        SparseyNet.image_hierarchy(8, 8, LevelSpec(2, 2), patch=9, stride=1, upper=[])
    with pytest.raises(SparsenetsError, match="cued recall"):
        net.recall_sequence(torch.zeros(1, 16), 3)


def test_fixed_tie_break_gives_repeatable_codes() -> None:
    # An empty mac ties every cell (V = 0): random tie-breaks differ per call, fixed priorities do not.
    x = random_patterns(8, 50, 10, torch.Generator().manual_seed(9))
    fixed = SparseyNet.single_mac(50, 6, 6, params=CSAParams(tie_break="fixed"))
    a, b = fixed.recognise(x)[0].winners, fixed.recognise(x)[0].winners
    assert torch.equal(a, b) and torch.all(a == a[0])
    rand = SparseyNet.single_mac(50, 6, 6)
    assert not torch.equal(rand.recognise(x)[0].winners, rand.recognise(x)[0].winners)


def test_cell_freezing_caps_each_cell() -> None:
    gen = torch.Generator().manual_seed(10)
    x = random_patterns(200, 60, 12, gen)
    net = SparseyNet.single_mac(60, 4, 4, freeze_threshold=None, cell_freeze=0.25)
    net.learn(x)
    b = net.levels[0].u
    per_cell = b.weight.sum(1)  # (1, Q·K) set weights per cell
    assert torch.equal(per_cell, b.n_set_cell)
    # a cell stops learning once past 25 % of its 60 inputs; its last item adds at most 12
    assert torch.all(per_cell <= 0.25 * 60 + 12)
    free = SparseyNet.single_mac(60, 4, 4, freeze_threshold=None)
    free.learn(x)
    assert free.levels[0].u.weight.sum(1).max() > per_cell.max()

"""Grokking-tickets experiments: stacked training equals separate training; a tiny end-to-end run of each."""

from __future__ import annotations

import json

import pytest
import torch

from sparsenets.errors import SparsenetsError
from sparsenets.experiments.tickets import common as G
from sparsenets.masks import attach_masks, load_masks
from sparsenets.models.grokking import GrokMLP
from sparsenets.runs import execute
from sparsenets.tickets import magnitude_scores, prune_by_scores, prune_members, snapshot


def test_stacked_training_equals_separate_training() -> None:
    split = G.modular_split(11, "add", 0.5, 0)
    seeds = [3, 4]
    ens = G.build(lambda: GrokMLP(p=11, d_emb=16, hidden=8), seeds)
    masks = prune_members(magnitude_scores(snapshot(ens)), 0.5)
    attach_masks(ens, masks)
    names = list(masks)
    hist, _ = G.train_members(ens, split, 30, names=names, run_dir=None, eval_every=10)
    for e, s in enumerate(seeds):
        torch.manual_seed(s)
        single = GrokMLP(p=11, d_emb=16, hidden=8)
        attach_masks(single, {n: m[e] for n, m in masks.items()})
        ens1 = G.build(lambda m=single: m, [0])
        attach_masks(ens1, {n: m[e : e + 1] for n, m in masks.items()})
        h1, _ = G.train_members(ens1, split, 30, names=names, run_dir=None, eval_every=10)
        for n, p in ens.named_parameters():
            assert torch.allclose(p[e], dict(ens1.named_parameters())[n][0], atol=1e-6)
            assert int((p[e][~masks[n][e]] != 0).sum()) == 0
        assert [r["test_accuracy"] for r in h1[0]] == [r["test_accuracy"] for r in hist[e]]


def test_le_pairs_and_masks_exact() -> None:
    split = G.modular_split(13, "add", 0.4, 1)
    assert bool((split.x_train[:, 0] <= split.x_train[:, 1]).all())
    assert bool(((split.x_train.sum(1)) % 13 == split.y_train).all())
    ens = G.build(lambda: GrokMLP(p=13, d_emb=10, hidden=6), [0, 1])
    m = G.control_masks("random", ens, ["W_emb", "W_in"], 0.6, generator=torch.Generator().manual_seed(0))
    for e in range(2):
        assert sum(int(v[e].sum()) for v in m.values()) == round(0.4 * (10 * 13 + 6 * 10))
    single = prune_by_scores(magnitude_scores({k: v[1] for k, v in snapshot(ens).items()}), 0.6)
    stacked = G.control_masks("magnitude", ens, None, 0.6, trained=snapshot(ens))
    assert all(torch.equal(stacked[k][1], single[k]) for k in single)


def test_grokking_tickets_end_to_end(tmp_path) -> None:
    sets = ["p=13", "seeds=2", "dense_steps=40", "dense_max_steps=40", "control_steps=40", "mem_step=20",
            "synflow_rounds=3", "eval_every=20"]  # fmt: skip
    run_dir, result = execute("grokking-tickets", sets=sets, out=tmp_path / "gt")
    m = result["metrics"]
    assert set(m["per_seed"]) == {"dense", "ticket", "random", "memorization", "l1_dense", "l2_dense", "snip",
                                  "grasp", "synflow"}  # fmt: skip
    assert set(m["checks"]) >= {"ticket_10x_sooner_than_dense", "random_does_not_generalize", "pai_slower"}
    masks, meta = load_masks(run_dir / "masks" / "ticket")
    assert meta["rate"] == 0.6 and all(v.shape[0] == 2 for v in masks.values())
    total = sum(v[0].numel() for v in masks.values())
    assert sum(int(v[0].sum()) for v in masks.values()) == round(0.4 * total)
    hist = json.loads((run_dir / "histories.json").read_text())
    assert [r["step"] for r in hist["ticket"][0]] == [20, 40]
    report = (run_dir / "report.md").read_text()
    assert "paper's claim" in report and "| ticket |" in report
    assert (run_dir / "figures" / "accuracy_curves.png").exists()


@pytest.mark.parametrize("name", ["grokking-tickets-sweep", "grokking-tickets-transformer"])
def test_other_experiments_end_to_end(tmp_path, name) -> None:
    sets = {
        "grokking-tickets-sweep": ["p=13", "seeds=1", "rates=[0.3, 0.6]", "rates_no_wd=[0.6]", "timing_every=20", "dense_snapshot_every=20",
                                   "dense_steps=40", "dense_max_steps=40", "ticket_steps=20", "eval_every=10"],
        "grokking-tickets-transformer": ["p=13", "seeds=1", "dense_steps=20", "dense_max_steps=20",
                                         "ticket_steps=20", "eval_every=10"],
    }[name]  # fmt: skip
    run_dir, result = execute(name, sets=sets, out=tmp_path / name)
    assert (run_dir / "report.md").exists() and result["metrics"]["dense_steps"] == (
        40 if "sweep" in name else 20
    )


def test_transformer_tickets_per_scope(tmp_path) -> None:
    sets = ["p=13", "seeds=2", "dense_steps=20", "dense_max_steps=20", "ticket_steps=20", "eval_every=10"]
    run_dir, result = execute("grokking-tickets-transformer", sets=sets, out=tmp_path / "t")
    kept = result["metrics"]["kept_fraction"]
    assert set(kept) == {"ticket", "random", "ticket-layer", "random-layer"}
    # per layer: every tensor keeps round(0.4 n) of its n weights; global: the same total, split unevenly
    sizes = {"W_E": 13 * 128, "W_Q": 128 * 128, "W_U": 13 * 128}
    for name, n in sizes.items():
        assert kept["ticket-layer"][name] == pytest.approx(round(0.4 * n) / n)
    assert kept["ticket"] != kept["ticket-layer"]
    assert set(result["metrics"]["sooner_per_seed"]) == {"ticket", "ticket-layer"}
    assert all(len(v) == 2 for v in result["metrics"]["sooner_per_seed"].values())
    assert "| ticket-layer |" in (run_dir / "report.md").read_text()


def test_unknown_scope_is_one_clear_error(tmp_path) -> None:
    with pytest.raises(SparsenetsError, match="scopes must be a non-empty subset"):
        execute(
            "grokking-tickets-transformer",
            sets=[
                "p=13",
                "seeds=1",
                "dense_steps=10",
                "dense_max_steps=10",
                "ticket_steps=10",
                'scopes=["tensor"]',
            ],
            out=tmp_path / "t",
        )

"""Grokking-tickets experiments: a tiny end-to-end run of each, through `sparsenets.runs`."""

from __future__ import annotations

import json

import pytest

from sparsenets.errors import SparsenetsError
from sparsenets.masks import load_masks
from sparsenets.runs import execute


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

"""End to end: the WGSEF LeNet experiment in --quick size on real MNIST (every method, compaction, report)."""

from __future__ import annotations

import json

from sparsenets import runs


def test_wgsef_lenet_quick_run_ends_exact_k_and_compacts(tmp_path) -> None:
    run_dir, _ = runs.execute("wgsef-lenet5-mnist", quick=True, root=tmp_path)
    per_seed = json.loads((run_dir / "per_seed.json").read_text())
    for seed in per_seed:
        for method in ("wgsef", "group_lasso", "magnitude", "tp_groupnorm"):
            assert seed[method]["kept"] == [5, 12, 125]  # width 0.5: (10, 25, 250) groups, keep ratio 0.5
            assert seed[method]["max_abs_diff"] <= 1e-4
        assert seed["wgsef"]["flops"] < seed["dense"]["flops"] / 3
    report = (run_dir / "report.md").read_text()
    assert "| wgsef |" in report and (run_dir / "figures" / "accuracy_vs_flops.png").exists()
    assert (run_dir / "figures" / "kept_per_layer.png").exists()

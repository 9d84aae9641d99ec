"""The report: Markdown and HTML with the run's tables, its learning curves and its own figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from sparsenets import runs
from sparsenets.errors import SparsenetsError
from sparsenets.report import flatten, write_report


def test_report_has_tables_curves_and_figures(tmp_path, toy_name) -> None:
    run_dir, _ = runs.execute(toy_name, quick=True, root=tmp_path / "runs")
    ctx = runs.RunContext(dir=run_dir, seed=0, quick=True, device=None)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ctx.save_figure(fig, "custom")
    ctx.write_report("| claim | measured |\n|---|---|\n| 1 | 2 |\n")
    md, html = write_report([tmp_path / "runs"], tmp_path / "report")
    text, page = md.read_text(), html.read_text()
    assert "## toy" in text and "accuracy" in text and "| claim | measured |" in text
    assert "<table>" in page and page.count("<img") >= 2
    images = list((tmp_path / "report" / "assets").glob("*.png"))
    assert len(images) >= 2 and all(p.stat().st_size > 1000 for p in images)


def test_report_without_runs_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SparsenetsError, match=r"no result\.json"):
        write_report([tmp_path], tmp_path / "out")


def test_flatten_keeps_scalars_only() -> None:
    assert flatten({"a": 1, "b": {"c": 2.5, "d": [1, 2]}, "e": "x"}) == {"a": 1, "b.c": 2.5, "e": "x"}

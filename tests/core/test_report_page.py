"""The report page: what opens it, seeds aggregated, smoke runs without verdicts, escaping, folded tables,
no empty figures. Every run folder here is fake (no training)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from sparsenets.report import group_runs, load_run, plot_curves, write_report
from sparsenets.report.fragments import (
    SMOKE_VERDICT,
    claim_first,
    demote_headings,
    main_figure,
    no_verdicts,
    split_lead,
)
from sparsenets.report.groups import headline


def fake_run(
    root: Path,
    folder: str,
    experiment: str,
    *,
    seed: int = 0,
    quick: bool = False,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    fragment: str | None = None,
    figures: tuple[str, ...] = (),
    curve: bool = False,
) -> Path:
    """A finished run folder as `sparsenets run` leaves it: result.json, optional report.md, figures, log."""
    run = root / folder
    run.mkdir(parents=True)
    result = {
        "experiment": experiment,
        "config": config or {"lr": 0.1},
        "metrics": metrics or {"accuracy": 0.5},
        "seconds": 1.5,
        "seed": seed,
        "quick": quick,
        "versions": {"torch": "2.x", "python": "3.x", "git_commit": "abcdef1234567"},
    }
    (run / "result.json").write_text(json.dumps(result))
    if fragment is not None:
        (run / "report.md").write_text(fragment)
    for name in figures:
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        (run / "figures").mkdir(exist_ok=True)
        fig.savefig(run / "figures" / f"{name}.png")
        plt.close(fig)
    if curve:
        lines = [{"step": s, "split": "train", "loss": 1.0 / (s + 1)} for s in range(5)]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    return run


class Structure(HTMLParser):
    """Records, for every start tag, the open tags around it and the text of the innermost <summary> seen."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, tuple[str, ...], dict[str, str | None], str]] = []
        self.summaries: list[str] = []
        self._in_summary = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        summary = self.summaries[-1] if "details" in self.stack and self.summaries else ""
        self.tags.append((tag, tuple(self.stack), dict(attrs), summary))
        if tag not in ("img", "br", "hr", "meta"):
            self.stack.append(tag)
        if tag == "summary":
            self._in_summary = True
            self.summaries.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass
        if tag == "summary":
            self._in_summary = False

    def handle_data(self, data: str) -> None:
        if self._in_summary:
            self.summaries[-1] += data


def structure(page: str) -> Structure:
    """The parsed structure of an HTML page."""
    s = Structure()
    s.feed(page)
    return s


def section_order(page: str) -> list[str]:
    """The ids of the page's <section>s and of the overview, in page order."""
    return [
        a["id"] or "" for tag, _, a, _ in structure(page).tags if tag in ("section", "div") and a.get("id")
    ]


# ---------------------------------------------------------------- the page


def _page(tmp_path: Path) -> tuple[str, str]:
    md, page = write_report([tmp_path / "runs"], tmp_path / "report")
    return md.read_text(), page.read_text()


def test_a_compare_run_leads_the_page(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake_run(runs, "aaa-1", "aaa", fragment="| claim | measured |\n|---|---|\n| x | 1 |\n", figures=("plot",))
    table = "| method | FLOPs ÷ | accuracy |\n|---|---|---|\n| wgsef | 5.2 | 94.0 |\n"
    fake_run(
        runs,
        "compare-1",
        "compare",
        fragment=table + "\nMore text.\n",
        figures=("pareto-latency", "pareto-flops"),
    )
    fake_run(runs, "zzz-1", "zzz")
    _, page = _page(tmp_path)
    order = section_order(page)
    assert order[0] == "compare-full" and order.index("overview") == 1, order
    assert order[2:] == ["aaa-full", "zzz-full"]
    assert "The comparison" in page.split('id="overview"')[0]
    # its main figure (pareto-flops), then the comparison table, before anything else
    first = page.split('<section id="compare-full"')[1]
    # the lead's table and main figure sit side by side in one row, before the rest of its text
    row = first[first.index("lead-row") : first.index("More text")]
    assert "<table>" in row and "pareto-flops" in row
    assert first.index("pareto-flops") < first.index("pareto-latency")


def test_without_compare_the_page_opens_with_the_overview(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake_run(runs, "b-1", "bbb", quick=True, metrics={"acc": 0.25, "loss": 2.0})
    fake_run(runs, "a-1", "aaa", metrics={"acc": 0.75})
    _, page = _page(tmp_path)
    assert section_order(page) == ["overview", "aaa-full", "bbb-smoke"]
    overview = page.split('id="overview"')[1].split("</div>")[0]
    rows = overview.split("<tr>")[2:]  # after the header row
    assert len(rows) == 2 and "aaa" in rows[0] and "full run" in rows[0] and "0.75" in rows[0]
    assert "bbb" in rows[1] and "smoke run" in rows[1]


def test_seeds_of_one_experiment_make_one_section_with_mean_and_std(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, acc in enumerate([0.8, 0.9, 1.0]):
        fake_run(runs, f"exp-s{seed}", "exp", seed=seed, metrics={"acc": acc}, fragment=f"seed {seed} text\n")
    fake_run(runs, "exp-quick", "exp", quick=True, metrics={"acc": 0.1})
    _, page = _page(tmp_path)
    assert section_order(page) == ["overview", "exp-full", "exp-smoke"]
    full = page.split('<section id="exp-full"')[1].split("</section>")[0]
    assert "0.9 ± 0.1" in full and "mean ± std (3 runs)" in full
    assert all(f"exp-s{s}" in full for s in range(3))
    assert full.index("seed 0 text") < full.index("seed 1 text")  # the lowest seed leads, others folded
    assert "0.9 ± 0.1" in page.split('id="overview"')[1].split("</div>")[0]


def test_runs_of_one_experiment_with_different_configs_are_not_taken_for_seeds(tmp_path: Path) -> None:
    """Two studies of one experiment (different models, both seed 0) each keep their own section and table."""
    runs = tmp_path / "runs"
    fake_run(runs, "cmp-a", "exp", config={"models": ["lenet5"]}, fragment="| a |\n|---|\n| lenet table |\n")
    fake_run(runs, "cmp-b", "exp", config={"models": ["vgg"]}, fragment="| b |\n|---|\n| vgg table |\n")
    _, page = _page(tmp_path)
    assert section_order(page) == ["overview", "exp-full", "exp-full-1"]
    assert "lenet table" in page and "vgg table" in page and "mean ± std (2 runs)" not in page


def test_a_smoke_run_is_labelled_and_gives_no_verdict(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    claims = (
        "Intro.\n\n| claim | target | measured | verdict |\n|---|---|---|---|\n"
        "| FLOPs reduction | ≥ 3× | 3.3× | met |\n| accuracy | ≤ 0.3 | 4.6 | ✗ not met |\n\n"
        "| paper's claim | measured here | agrees |\n|---|---|---|\n| sooner | 10× | **yes** ✓ |\n"
    )
    fake_run(runs, "s", "study", quick=True, fragment=claims)
    fake_run(runs, "f", "study", fragment=claims)
    md, page = _page(tmp_path)
    smoke = page.split('<section id="study-smoke"')[1].split("</section>")[0]
    full = page.split('<section id="study-full"')[1].split("</section>")[0]
    assert "smoke run" in smoke.split("</h2>")[0] and "full run" in full.split("</h2>")[0]
    assert smoke.count(SMOKE_VERDICT) == 3
    for word in ("met", "yes", "✓", "✗"):
        assert f"<td>{word}</td>" not in smoke and word not in smoke.split("<table>")[1].split("</table>")[0]
    assert "<td>met</td>" in full and "✓" in full  # a full run keeps its verdicts
    assert smoke.index("<table>") < smoke.index("Intro.")  # the claim table leads the section
    assert "smoke run" in page.split('id="overview"')[1].split("</div>")[0]
    assert md.count(SMOKE_VERDICT) == 3


def test_text_from_run_files_is_escaped(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    evil = "<script>alert(1)</script>"
    fake_run(
        runs,
        "evil",
        f"x{evil}",
        config={"name": evil, "nested": {"<b>k</b>": "<img src=x onerror=alert(2)>"}},
        metrics={f"m{evil}": 1.0, "note": evil},
        fragment=f"# {evil}\n\n<div onclick='x'>{evil}</div>\n\n| a | b |\n|---|---|\n| {evil} | `{evil}` |\n\n"
        "[click](javascript:alert(3)) ![i](data:text/html,x)\n\n```\nunclosed " + evil + "\n",
        figures=("fig<script>x",),
    )
    _, page = _page(tmp_path)
    low = page.lower()
    assert (
        "<script" not in low and "<img src=x" not in low and "<div onclick" not in low and "<b>k" not in low
    )
    assert "javascript:" not in low and "data:text" not in low
    assert "&lt;script&gt;" in page
    assert all(p.name.isascii() and "<" not in p.name for p in (tmp_path / "report" / "assets").iterdir())


def test_config_and_metrics_are_html_tables_folded_in_details(tmp_path: Path) -> None:
    fake_run(tmp_path / "runs", "r", "exp", config={"lr": 0.1, "sizes": [1, 2]}, curve=True)
    _, page = _page(tmp_path)
    tables = [(stack, summary) for tag, stack, _, summary in structure(page).tags if tag == "table"]
    folded = {summary.split(" (")[0] for stack, summary in tables if "details" in stack}
    assert {"config", "metrics", "run metadata"} <= folded
    imgs = [(stack, summary) for tag, stack, _, summary in structure(page).tags if tag == "img"]
    assert any("details" in stack and summary.startswith("learning curves") for stack, summary in imgs)
    assert "[1,2]" in page  # list values of a config are kept


def test_no_empty_figure_is_written(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = fake_run(runs, "r", "exp")  # no metrics.jsonl: nothing to plot
    (run / "metrics.jsonl").write_text(json.dumps({"step": 0, "split": "eval", "note": "text"}) + "\n")
    (run / "figures").mkdir()
    (run / "figures" / "empty.png").write_bytes(b"")
    _, page = _page(tmp_path)
    assert list((tmp_path / "report" / "assets").iterdir()) == []
    assert "<img" not in page and "learning curves" not in page
    assert plot_curves(run, tmp_path / "c.png") is None and not (tmp_path / "c.png").exists()


def test_a_single_logged_point_is_no_curve_but_two_are(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "runs", "r", "exp")
    one = [
        {"step": 3, "split": "eval", "accuracy": 0.5},
        {"step": 3, "split": "eval", "accuracy": float("nan")},
    ]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in one) + "\n")
    assert plot_curves(run, tmp_path / "c.png") is None and not (tmp_path / "c.png").exists()
    with (run / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 6, "split": "eval", "accuracy": 0.7}) + "\n")
    assert plot_curves(run, tmp_path / "c.png") == tmp_path / "c.png"
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_headline_uses_declared_metrics_and_falls_back_to_numeric_ones(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fake_run(
        runs, "w", "wgsef-x", metrics={"dense": {"accuracy_mean": 90.0}, "wgsef": {"accuracy_mean": 91.0}}
    )
    fake_run(runs, "u", "unknown", metrics={"flag": True, "name": "n", "a": 1, "b": 2.5})
    groups = group_runs([load_run(p) for p in sorted(runs.iterdir())])
    assert [g.experiment for g in groups] == ["unknown", "wgsef-x"]
    assert headline(groups[0]) == [("a", "1"), ("b", "2.5")]
    assert headline(groups[1]) == [("wgsef.accuracy_mean", "91"), ("dense.accuracy_mean", "90")]


def test_fragment_helpers() -> None:
    text = "### Title\n\nIntro.\n\n| m | acc |\n|---|---|\n| a | 1 |\n\n| claim | verdict |\n|---|---|\n| c | yes |\n"
    moved = claim_first(text)
    assert moved.index("| claim") < moved.index("Intro.") and moved.startswith("### Title")
    lead, rest = split_lead(moved)
    assert "| claim" in lead and "Intro." in rest
    assert claim_first("| m |\n|---|\n| 1 |\n\n| claim |\n|---|\n| 2 |\n").startswith("| m |")
    assert no_verdicts(text).count(SMOKE_VERDICT) == 1 and "| yes |" not in no_verdicts(text)
    assert (
        demote_headings("# A\n## B\n#### C\n```\n# code\n```\n") == "### A\n### B\n#### C\n```\n# code\n```\n"
    )
    figs = [Path("a.png"), Path("pareto-x.png"), Path("b.png")]
    assert main_figure(figs) == Path("pareto-x.png") and main_figure([Path("main.png"), *figs]) == Path(
        "main.png"
    )
    assert main_figure([Path("b.png"), Path("a.png")]) == Path("a.png") and main_figure([]) is None

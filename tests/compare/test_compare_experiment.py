"""The `compare` experiment end to end in a tiny size: records, table, figures; bad input is one line, exit 2,
and leaves a finished run folder untouched."""

from __future__ import annotations

import hashlib
import json

import pytest

from sparsenets import cli

TINY = ["train_limit=512", "test_limit=200", 'methods=["wgsef","l1_filter","imp"]', "reductions=[2.0,4.0]", "workers=2",
        "latency_repeat=2"]  # fmt: skip


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def _run(out, sets: list[str]) -> int:
    return cli.main(
        ["run", "compare", "--quick", "--out", str(out), *[a for s in sets for a in ("--set", s)]]
    )


def test_compare_quick_writes_records_table_and_pareto_plots(tmp_path) -> None:
    out = tmp_path / "cmp"
    assert _run(out, TINY) == 0
    records = json.loads((out / "records.json").read_text())
    assert len(records) == 3 * 2 and {r["method"] for r in records} == {"wgsef", "l1_filter", "imp"}
    for r in records:
        assert r["kept"] == r["budgeted"]
    report = (out / "report.md").read_text()
    assert report.startswith("**LeNet-5-Caffe / MNIST** (smoke run: one seed, no verdict)")
    assert "meets" not in report and "misses" not in report  # no verdict from a smoke run
    assert (out / "figures" / "pareto-flops.png").stat().st_size > 5000
    assert (out / "figures" / "pareto-latency.png").stat().st_size > 5000
    before = _digest(out)
    assert _run(out, TINY) == 0  # a finished run is reused, not redone
    assert _digest(out) == before


@pytest.mark.parametrize(
    "bad, message",
    [
        ('methods=["magnitud"]', "unknown methods"),
        ('models=["resnet"]', "unknown models"),
        ("reductions=[1.0]", "reduction factor > 1"),
        ("reductions=[100000.0]", "keep no group"),
    ],
)
def test_bad_compare_config_is_one_line_exit_2_and_no_folder(
    tmp_path, capsys, bad: str, message: str
) -> None:
    out = tmp_path / "bad"
    assert _run(out, [bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()

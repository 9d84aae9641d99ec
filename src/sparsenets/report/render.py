"""Run folders → one Markdown page and one static HTML page (tables, the experiment's own fragment, figures)."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path
from typing import Any

import markdown

from sparsenets.report.plots import plot_curves
from sparsenets.report.runs import find_runs, flatten
from sparsenets.runs import fmt_value, md_table

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "th{background:#eee}img{max-width:100%}code{background:#f4f4f4}"
)


def _section(run: Path, out: Path, index: int) -> tuple[str, list[Any]]:
    result = json.loads((run / "result.json").read_text())
    name = result.get("experiment", run.name)
    assets = out / "assets"
    parts = [f"## {name} — `{run.name}`\n"]
    meta = [
        ["seed", result.get("seed")],
        ["quick", result.get("quick")],
        ["seconds", result.get("seconds")],
        ["git commit", (result.get("versions", {}).get("git_commit") or "")[:10]],
        ["torch", result.get("versions", {}).get("torch")],
    ]
    parts.append(md_table(["run", "value"], meta))
    cfg = flatten(result.get("config", {}))
    if cfg:
        parts.append(
            '<details markdown="1"><summary>config</summary>\n\n'
            + md_table(["key", "value"], [[k, v] for k, v in cfg.items()])
            + "\n</details>\n"
        )
    metrics = flatten(result.get("metrics", {}))
    if metrics:
        parts.append(md_table(["metric", "value"], [[k, v] for k, v in list(metrics.items())[:80]]))
    if (run / "report.md").exists():
        parts.append((run / "report.md").read_text() + "\n")
    curve = plot_curves(run, assets / f"{index:03d}-curves.png")
    if curve is not None:
        parts.append(f"![learning curves of {name}](assets/{curve.name})\n")
    for fig in sorted((run / "figures").glob("*.png")) if (run / "figures").is_dir() else []:
        target = assets / f"{index:03d}-{fig.name}"
        shutil.copyfile(fig, target)
        parts.append(f"![{fig.stem}](assets/{target.name})\n")
    headline = {k: v for k, v in metrics.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    first = ", ".join(f"{k}={fmt_value(v)}" for k, v in list(headline.items())[:4])
    return "\n".join(parts), [name, f"`{run.name}`", fmt_value(result.get("seconds", 0.0)), first]


def write_report(dirs: list[Path], out: Path) -> tuple[Path, Path]:
    """Write out/report.md and out/index.html (images in out/assets/) for every run under `dirs`.

    Returns:
        (markdown path, html path).
    """
    runs = find_runs(dirs)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    sections, summary = [], []
    for i, run in enumerate(runs):
        text, row = _section(run, out, i)
        sections.append(text)
        summary.append(row)
    body = "# sparsenets report\n\n" + md_table(["experiment", "run", "seconds", "headline metrics"], summary)
    body += "\n" + "\n".join(sections)
    md_path, html_path = out / "report.md", out / "index.html"
    md_path.write_text(body)
    rendered = markdown.markdown(body, extensions=["tables", "fenced_code", "md_in_html"])
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape('sparsenets report')}</title>"
        f"<style>{_CSS}</style></head><body>{rendered}</body></html>"
    )
    html_path.write_text(page)
    return md_path, html_path

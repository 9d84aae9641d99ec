"""Run folders → one Markdown page and one static HTML page.

The page opens with the result: the lead experiment (`groups.LEAD`, the comparison) when one ran, else a results
overview, one line per experiment. Each experiment's section then leads with its claim table and main figure;
raw metrics, config, learning curves and run metadata are folded away in <details>.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

from sparsenets.report import fragments
from sparsenets.report.groups import (
    LEAD,
    Group,
    differing_config,
    group_runs,
    headline,
    headline_keys,
    summarize,
)
from sparsenets.report.page import Fragment, Part, to_html, to_markdown
from sparsenets.report.plots import plot_curves
from sparsenets.report.runs import Run, find_runs, load_run
from sparsenets.report.safe import esc, fmt_value, md_table, slug

TITLE = "sparsenets report"
SMOKE_NOTE = (
    "Smoke run (--quick): a code check at reduced size. Its numbers are not results; no verdict is given."
)
MAX_METRIC_ROWS = 200


def _details(summary: str, body: str) -> str:
    """A folded block; `summary` is the report's own text, `body` Markdown (md_in_html renders it)."""
    return f'<details markdown="1"><summary>{html.escape(summary)}</summary>\n\n{body}\n</details>\n'


def _copy(fig: Path, assets: Path, stem: str) -> str:
    """Copy `fig` into assets/ under a safe name; its Markdown image (alt text escaped)."""
    target = assets / f"{stem}-{slug(fig.stem)}.png"
    shutil.copyfile(fig, target)
    return f"![{esc(fig.stem)}](assets/{target.name})"


def _title(group: Group) -> str:
    """The section heading: the experiment, 'smoke run' for `--quick` runs; the lead's title before it."""
    badge = "smoke" if group.quick else "full"
    lead = f"{html.escape(LEAD[group.experiment])} — " if group.lead else ""
    return f"## {lead}{esc(group.experiment)} <span class='badge {badge}'>{group.kind}</span>\n"


def _meta(group: Group) -> str:
    """One grey line: runs, seeds, time, folders."""
    seeds = [str(r.seed) for r in group.runs if r.seed is not None]
    secs = sum(r.seconds or 0.0 for r in group.runs)
    folders = ", ".join(r.path.name for r in group.runs[:4]) + (" …" if len(group.runs) > 4 else "")
    bits = [
        f"{len(group.runs)} run{'s' if len(group.runs) != 1 else ''}",
        f"seed{'s' if len(seeds) != 1 else ''} {', '.join(seeds)}" if seeds else "",
        f"{secs:.0f} s",
        f"folder{'s' if len(group.runs) != 1 else ''} {folders}",
    ]
    return f"<p class='meta'>{html.escape(' · '.join(b for b in bits if b))}</p>\n"


def _seeds_table(group: Group) -> str:
    """One row per run (its seed, differing config, headline metrics) and a mean ± std row."""
    keys, differ = headline_keys(group), differing_config(group)[:4]
    header = ["run", "seed", *differ, *keys]
    rows: list[list[object]] = [
        [r.path.name, r.seed, *(r.config.get(k, "") for k in differ), *(r.metrics.get(k, "") for k in keys)]
        for r in group.runs
    ]
    rows.append(
        [f"mean ± std ({len(group.runs)} runs)", "", *([""] * len(differ))]
        + [summarize([r.metrics[k] for r in group.runs if k in r.metrics]) for k in keys]
    )
    return md_table(header, rows)


def _fragment(run: Run) -> tuple[str, str]:
    """(lead, rest) of a run's report.md: claim table first; verdict cells blanked for a smoke run."""
    text = fragments.claim_first(fragments.demote_headings(run.fragment))
    if run.quick:
        text = fragments.no_verdicts(text)
    return fragments.split_lead(text)


def _folded(group: Group, assets: Path, stem: str) -> list[Part]:
    """Metrics, config, learning curves, run metadata (and the other seeds' own reports), folded away."""
    out: list[Part] = []
    keys = list(dict.fromkeys(k for r in group.runs for k in r.metrics))
    metric_rows = [[k, summarize([r.metrics[k] for r in group.runs if k in r.metrics])] for k in keys]
    if metric_rows:
        more = f" (first {MAX_METRIC_ROWS})" if len(metric_rows) > MAX_METRIC_ROWS else ""
        body = md_table(
            ["metric", "value" if len(group.runs) == 1 else "mean ± std"], metric_rows[:MAX_METRIC_ROWS]
        )
        out.append(_details(f"metrics ({len(metric_rows)}){more}", body))
    cfg_keys = list(dict.fromkeys(k for r in group.runs for k in r.config))
    if cfg_keys:
        rows = [
            [k, " / ".join(dict.fromkeys(fmt_value(r.config.get(k, "")) for r in group.runs))]
            for k in cfg_keys
        ]
        out.append(_details(f"config ({len(cfg_keys)} keys)", md_table(["key", "value"], rows)))
    curves = plot_curves([r.path for r in group.runs], assets / f"{stem}-curves.png")
    if curves is not None:
        out.append(
            _details("learning curves (every metrics.jsonl)", f"![learning curves](assets/{curves.name})\n")
        )
    meta = [
        [
            r.path.name,
            r.seed,
            r.quick,
            fmt_value(r.seconds) if r.seconds is not None else "",
            str(r.versions.get("git_commit") or "")[:10],
            r.versions.get("torch", ""),
            r.versions.get("python", ""),
            str(r.path),
        ]
        for r in group.runs
    ]
    header = ["run", "seed", "quick", "seconds", "git commit", "torch", "python", "path"]
    out.append(_details("run metadata", md_table(header, meta)))
    for i, run in enumerate(group.runs[1:], start=1):
        lead, rest = _fragment(run)
        if not (lead or run.figures):
            continue
        figs = "\n".join(_copy(f, assets, f"{stem}-run{i}") for f in run.figures)
        label = f"report of run {run.path.name} (seed {run.seed})"
        out += [
            f'<details markdown="1"><summary>{html.escape(label)}</summary>\n',
            Fragment(lead + "\n" + rest),
        ]
        out.append(
            f"\n<div class='figures' markdown='1'>\n\n{figs}\n\n</div>\n</details>\n"
            if figs
            else "</details>\n"
        )
    return out


def section(group: Group, assets: Path, index: int) -> list[Part]:
    """One experiment's section: title, smoke note, claim table and main figure (figure first for the page's
    lead), seeds, the rest of its report, its other figures, folded details."""
    stem = f"{index:02d}-{slug(group.experiment)}"
    run = group.first
    out: list[Part] = [f'<section id="{group.anchor}" markdown="1">\n', _title(group), _meta(group)]
    if group.quick:
        out.append(f"<p class='note'>{html.escape(SMOKE_NOTE)}</p>\n")
    lead, rest = _fragment(run)
    main = fragments.main_figure(run.figures)
    figure = (
        f"<div class='main-figure' markdown='1'>\n\n{_copy(main, assets, stem)}\n\n</div>\n" if main else ""
    )
    table: Part = Fragment(lead) if lead else ""
    if (
        group.lead and figure and lead
    ):  # the page's lead: table and figure side by side, both on the first screen
        out += ["<div class='lead-row' markdown='1'>\n<div class='lead-table' markdown='1'>\n", table,
                "</div>\n", figure, "</div>\n"]  # fmt: skip
    else:
        out += [table, figure]
    if len(group.runs) > 1:
        out.append(f"**{len(group.runs)} runs, headline metrics per seed:**\n\n{_seeds_table(group)}")
    elif not lead and headline(group):
        out.append(md_table(["headline metric", "value"], [list(kv) for kv in headline(group)]))
    if rest:
        out.append(Fragment(rest))
    others = [f for f in run.figures if f != main]
    if others:
        figs = "\n".join(_copy(f, assets, stem) for f in others)
        out.append(f"<div class='figures' markdown='1'>\n\n{figs}\n\n</div>\n")
    out += _folded(group, assets, stem)
    out.append("</section>\n")
    return out


def overview(groups: list[Group]) -> str:
    """The results overview: one row per experiment (name, smoke or full run and how many, headline metrics)."""
    rows = []
    for g in groups:
        head = (
            " · ".join(f"<span class='k'>{esc(k)}</span> {esc(v)}" for k, v in headline(g))
            or "no headline metric"
        )
        badge = f"<span class='badge {'smoke' if g.quick else 'full'}'>{g.kind}</span>"
        runs = f" ×{len(g.runs)} seeds" if len(g.runs) > 1 else ""
        rows.append([f"[{esc(g.experiment)}](#{g.anchor})", badge + runs, head])
    return (
        '<div id="overview" markdown="1">\n\n### Results overview\n\n'
        + md_table(["experiment", "run", "headline metrics (mean ± std over seeds)"], rows, trusted=3)
        + "\n</div>\n"
    )


def _intro(groups: list[Group], runs: list[Run]) -> str:
    """One line under the title: how many experiments and runs, and whether any result is a smoke run."""
    smoke = sum(g.quick for g in groups)
    text = f"{len(groups)} experiment{'s' if len(groups) != 1 else ''} from {len(runs)} run folders"
    if smoke == len(groups):
        text += (
            ". Every one is a smoke run (--quick): reduced sizes that check the code, so the numbers below are "
            "not results and no paper's claim is judged."
        )
    elif smoke:
        text += f"; {smoke} of them smoke runs (--quick, labelled; no verdict is given for those)."
    return f"<p class='intro'>{html.escape(text)}</p>\n"


def write_report(dirs: list[Path], out: Path) -> tuple[Path, Path]:
    """Write out/report.md and out/index.html (images in out/assets/) for every run under `dirs`.

    Returns:
        (markdown path, html path).
    """
    runs = [load_run(p) for p in find_runs(dirs)]
    groups = group_runs(runs)
    assets = out / "assets"
    if assets.exists():
        shutil.rmtree(assets)  # figures of an earlier report must not linger next to this one
    assets.mkdir(parents=True)
    parts: list[Part] = [f"# {TITLE}\n", _intro(groups, runs)]
    leads = [g for g in groups if g.lead]
    for i, g in enumerate(leads):
        parts += section(g, assets, i)
    parts.append(overview(groups))
    for i, g in enumerate(groups[len(leads) :], start=len(leads)):
        parts += section(g, assets, i)
    md_path, html_path = out / "report.md", out / "index.html"
    md_path.write_text(to_markdown(parts))
    html_path.write_text(to_html(parts, TITLE))
    return md_path, html_path

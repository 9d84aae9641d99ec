"""An experiment's own report.md and figures, arranged for a reader: the claim table and main figure first, no
verdict printed for a smoke run."""

from __future__ import annotations

import re
from pathlib import Path

SMOKE_VERDICT = "smoke run — no verdict"
"""What a smoke run (`--quick`) shows where a full run states whether a paper's claim holds."""

VERDICT_COLUMNS = ("verdict", "agrees", "agrees?", "holds", "holds?", "claim holds", "pass", "passed", "ok")
"""Table columns (header text, case-insensitive) that judge a claim; blanked out for smoke runs."""

CLAIM_HEADERS = ("claim", "verdict", "check")
"""A table whose header mentions one of these is the experiment's claim table; it leads its section."""

MAIN_FIGURE_PATTERNS = ("main*.png", "pareto*.png")
"""Figure names that mark an experiment's main figure, in order of preference; else its first figure."""


def blocks(text: str) -> list[str]:
    """The Markdown blocks of `text` (split at blank lines; a fenced code block stays whole)."""
    out: list[str] = []
    cur: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if not line.strip() and not fenced:
            if cur:
                out.append("\n".join(cur))
                cur = []
            continue
        cur.append(line)
    if cur:
        out.append("\n".join(cur))
    return out


def _table_lines(block: str) -> list[str] | None:
    """The lines of `block` when it is a Markdown table (header, |---| rule, rows), else None."""
    lines = block.splitlines()
    if (
        len(lines) >= 2
        and lines[0].lstrip().startswith("|")
        and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[1])
    ):
        return lines
    return None


def _cells(line: str) -> list[str]:
    """The cells of one table row (outer pipes dropped; escaped pipes kept inside their cell)."""
    parts = re.split(r"(?<!\\)\|", line.strip())
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    return [p.strip() for p in parts]


def is_claim_table(block: str) -> bool:
    """True when `block` is a table whose header names a claim, a verdict or a check."""
    lines = _table_lines(block)
    return bool(lines) and any(w in h.lower() for h in _cells(lines[0]) for w in CLAIM_HEADERS)


def claim_first(text: str) -> str:
    """`text` with its first claim table moved to the top (after a leading heading); unchanged when the
    fragment already starts with a table or has no claim table."""
    parts = blocks(text)
    head = 1 if parts and parts[0].lstrip().startswith("#") else 0
    if len(parts) <= head or _table_lines(parts[head]) is not None:
        return text
    for i, block in enumerate(parts):
        if i > head and is_claim_table(block):
            parts.insert(head, parts.pop(i))
            return "\n\n".join(parts) + "\n"
    return text


def no_verdicts(text: str) -> str:
    """`text` with every cell of a verdict column (`VERDICT_COLUMNS`) replaced by `SMOKE_VERDICT`.

    The experiments write that themselves when run with `--quick`; this also covers fragments written before.
    """
    out = []
    for block in blocks(text):
        lines = _table_lines(block)
        if lines is None:
            out.append(block)
            continue
        header = _cells(lines[0])
        judged = [i for i, h in enumerate(header) if h.strip("* ").lower() in VERDICT_COLUMNS]
        if not judged:
            out.append(block)
            continue
        rows = lines[:2]
        for line in lines[2:]:
            cells = _cells(line)
            for i in judged:
                if i < len(cells) and cells[i]:
                    cells[i] = SMOKE_VERDICT
            rows.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(rows))
    return "\n\n".join(out) + "\n"


def demote_headings(text: str, top: int = 3) -> str:
    """`text` with every heading at least level `top` (the page's sections own levels 1 and 2); code kept."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})(\s.*)$", line)
        out.append("#" * max(top, len(m.group(1))) + m.group(2) if m else line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def split_lead(text: str) -> tuple[str, str]:
    """(lead, rest) of a fragment: the lead runs up to and including its first table (all of it when none)."""
    parts = blocks(text)
    for i, block in enumerate(parts):
        if _table_lines(block) is not None:
            rest = "\n\n".join(parts[i + 1 :])
            return "\n\n".join(parts[: i + 1]) + "\n", rest + "\n" if rest else ""
    return ("\n\n".join(parts) + "\n" if parts else ""), ""


def main_figure(figures: list[Path]) -> Path | None:
    """The figure a section shows first: main*.png, then pareto*.png, else the first by name (None if none)."""
    for pattern in MAIN_FIGURE_PATTERNS:
        named = sorted(f for f in figures if f.match(pattern))
        if named:
            return named[0]
    return sorted(figures)[0] if figures else None

"""Markdown tables shared by run reports and the site report."""

from __future__ import annotations

from typing import Any


def fmt_value(v: Any) -> str:
    """A table cell: floats to 4 significant digits, anything else as str()."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (report pages and experiment reports share it)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt_value(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"

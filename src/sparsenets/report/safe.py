"""Text from run files on an HTML page: escaped, never interpreted as HTML.

Run folders are data, not code: an experiment name, a config value or a report.md fragment could hold
`<script>`. Scalars are escaped before they enter the page's Markdown (`esc`, `md_table`); fragments are rendered
apart by a Markdown converter with raw HTML switched off (`render_untrusted`); every link and image address on
the page is finally limited to relative paths and http(s)/mailto (`safe_urls`).
"""

from __future__ import annotations

import html
import re
from typing import Any

import markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#!{}])")
_URL_ATTR = re.compile(r'\b(href|src)="([^"]*)"', re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
_ALLOWED_SCHEMES = {"http", "https", "mailto"}


def fmt_value(v: Any) -> str:
    """A table cell: floats to 4 significant digits, booleans and anything else as str()."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def esc(value: Any) -> str:
    """`value` as inline Markdown text that renders literally: HTML escaped, Markdown syntax backslashed."""
    text = fmt_value(value).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def md_table(header: list[str], rows: list[list[Any]], trusted: int = 0) -> str:
    """A Markdown table whose cells are escaped; the first `trusted` columns are the report's own Markdown.

    Args:
        header: column titles (escaped).
        rows: cell values (numbers formatted by `fmt_value`).
        trusted: how many leading columns hold Markdown written by the report itself (links), not run data.
    """
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(c) if i < trusted else esc(c) for i, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    """A safe HTML id / file name part: lowercase letters, digits, '.', '-' only."""
    s = re.sub(r"[^a-z0-9.\-]+", "-", text.lower()).strip("-.")
    return s or "x"


def _converter() -> markdown.Markdown:
    """A Markdown converter that escapes raw HTML (blocks and inline tags) instead of passing it through."""
    md = markdown.Markdown(extensions=["tables", "fenced_code", "sane_lists"])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md


def render_untrusted(text: str) -> str:
    """HTML of Markdown written by a run (its report.md): tables and code render, raw HTML shows as text."""
    return safe_urls(_converter().convert(text))


def safe_urls(page: str) -> str:
    """Every href/src of `page` that names a scheme other than http(s)/mailto (javascript:, data:) → '#'."""

    def fix(m: re.Match[str]) -> str:
        # browsers drop whitespace and decode entities before they read the scheme
        url = re.sub(r"[\x00-\x20]+", "", html.unescape(m.group(2)))
        scheme = _SCHEME.match(url)
        if scheme and scheme.group(1).lower() not in _ALLOWED_SCHEMES:
            return f'{m.group(1)}="#"'
        return m.group(0)

    return _URL_ATTR.sub(fix, page)

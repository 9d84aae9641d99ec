"""The HTML page around the rendered Markdown: style, and the experiments' fragments put in their places."""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass

import markdown

from sparsenets.report.safe import render_untrusted, safe_urls

CSS = """
:root{--ink:#1f2328;--mute:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da;--warn:#9a6700;--warnbg:#fff8c5}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);max-width:1180px;
 margin:0 auto;padding:1.2em 1.5em 4em}
h1{font-size:1.7em;margin:.2em 0 .1em}
h2{font-size:1.35em;margin:2.2em 0 .3em;padding-top:.6em;border-top:1px solid var(--line)}
h1+p,section:first-of-type h2{margin-top:.2em}
h3{font-size:1.05em;margin:1.2em 0 .3em}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:13.5px;font-variant-numeric:tabular-nums;
 display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid var(--line);padding:.22em .55em;text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
tbody tr:nth-child(even) td{background:#fbfcfd}
code{background:var(--soft);padding:0 .25em;border-radius:3px;font-size:.92em}
img{max-width:100%;height:auto}
.main-figure img{max-width:min(100%,780px);max-height:460px;border:1px solid var(--line);border-radius:4px}
.lead-row{display:flex;gap:1.2em;align-items:flex-start;flex-wrap:wrap}
.lead-row .lead-table table{font-size:12.5px;margin-top:0}.lead-row .lead-table td{padding:.12em .45em}
.lead-row .main-figure{flex:1 1 340px}.lead-row .main-figure img{max-width:100%;max-height:560px}
.figures img{max-width:calc(50% - .6em);margin:0 .5em .5em 0;vertical-align:top;border:1px solid var(--line)}
.meta{color:var(--mute);font-size:13px;margin:.1em 0 .6em}
.badge{display:inline-block;font-size:.62em;font-weight:600;vertical-align:middle;padding:.12em .6em;
 border-radius:1em;margin-left:.4em;letter-spacing:.02em}
.badge.smoke{background:var(--warnbg);color:var(--warn);border:1px solid #d4a72c}
.badge.full{background:#dafbe1;color:#1a7f37;border:1px solid #4ac26b}
.note{background:var(--warnbg);border-left:4px solid #d4a72c;padding:.45em .8em;margin:.6em 0;font-size:14px}
.intro{color:var(--mute);margin:.1em 0 1em}
details{margin:.35em 0;border:1px solid var(--line);border-radius:6px;padding:.2em .8em}
details[open]{padding-bottom:.5em}
summary{cursor:pointer;color:var(--mute);font-size:14px;padding:.15em 0}
.fragment h3:first-child{margin-top:.4em}
#overview table{font-size:13.5px;display:table;width:100%}
#overview td:nth-child(-n+2){white-space:nowrap}
#overview .badge{font-size:11px;margin-left:0}
.k{color:var(--mute);font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
"""


@dataclass(frozen=True)
class Fragment:
    """A run's own Markdown placed in the page: verbatim in report.md, rendered with raw HTML off in HTML."""

    text: str


Part = str | Fragment
"""A piece of the page: the report's own Markdown (run data in it already escaped), or a run's fragment."""


def to_markdown(parts: list[Part]) -> str:
    """report.md: the parts joined, each fragment as its experiment wrote it."""
    return "\n".join(p.text if isinstance(p, Fragment) else p for p in parts)


def to_html(parts: list[Part], title: str) -> str:
    """index.html: the report's Markdown rendered (md_in_html for <details>), each fragment rendered apart."""
    nonce = secrets.token_hex(8)
    tokens: dict[str, str] = {}
    src = []
    for p in parts:
        if isinstance(p, Fragment):
            token = f"SNFRAG{nonce}X{len(tokens)}Y"  # Y ends it: X1Y is no prefix of X12Y
            tokens[token] = f'<div class="fragment">\n{render_untrusted(p.text)}\n</div>'
            src.append(f"\n{token}\n")
        else:
            src.append(p)
    body = markdown.markdown("\n".join(src), extensions=["tables", "fenced_code", "md_in_html"])
    for token, fragment in tokens.items():
        # the token stands alone as a paragraph; replace that paragraph by the rendered fragment
        body = body.replace(f"<p>{token}</p>", fragment).replace(token, fragment)
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{safe_urls(body)}\n</body></html>\n"
    )

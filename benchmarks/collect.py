"""Stitch docs/benchmarks/*.md (one section per benchmark script) into docs/benchmarks.md.

Run after any benchmark: `python benchmarks/collect.py`.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
HEADER = """# Benchmarks

Every figure here comes from a script in `benchmarks/` run on this project's reference machine (2 CPU cores,
no GPU unless a section says otherwise); each section names the command that reproduces it. Speed is reported as a
ratio against a baseline measured in the same run.

"""


def main() -> None:
    """Concatenate the sections in name order (trainer first) and fix image paths to be relative to docs/."""
    parts = sorted((DOCS / "benchmarks").glob("*.md"), key=lambda p: (p.stem != "trainer", p.stem))
    # Sections link their images relative to docs/benchmarks/; the stitched page lives one folder up.
    local = re.compile(r"\]\((?!https?:|/|benchmarks/)([^)]+)\)")
    body = "\n".join(local.sub(r"](benchmarks/\1)", p.read_text()) for p in parts)
    (DOCS / "benchmarks.md").write_text(HEADER + body)
    print(f"wrote {DOCS / 'benchmarks.md'} from {len(parts)} sections")


if __name__ == "__main__":
    main()

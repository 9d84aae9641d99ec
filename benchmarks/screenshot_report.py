"""Render a report folder's index.html to a PNG with headless Chromium (what a reader sees on the first screen).

    python -m sparsenets report runs --out report
    python benchmarks/screenshot_report.py report --out docs/screenshots/report-first-screen.png

Needs a Chromium binary (`apt-get install -y chromium` on Debian; `--chromium PATH` for another). The PNG is
re-saved with a 256-colour palette when it exceeds `--max-kb` (text pages stay sharp).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser(explicit: str | None = None) -> str:
    """The Chromium executable to use: `explicit`, else the first of `BROWSERS` on PATH."""
    for name in (explicit,) if explicit else BROWSERS:
        path = shutil.which(name) if name else None
        if path:
            return path
    raise SystemExit(
        f"no Chromium found (tried {', '.join(BROWSERS)}); apt-get install -y chromium, or --chromium"
    )


def screenshot(
    report: Path, out: Path, width: int = 1280, height: int = 900, browser: str | None = None
) -> Path:
    """Write a `width`×`height` screenshot of `report`/index.html (or of `report` when it is an HTML file) to `out`."""
    page = report / "index.html" if report.is_dir() else report
    if not page.is_file():
        raise SystemExit(f"{page} not found; write it with `sparsenets report RUNS --out {report}`")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state from a user's browser
        cmd = [
            find_browser(browser),
            "--headless",
            "--no-sandbox",  # root in containers; the page is a local static file
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out.resolve()}",
            page.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not out.is_file():
        raise SystemExit(f"Chromium wrote no screenshot to {out}")
    return out


def shrink(png: Path, max_kb: int) -> int:
    """Re-save `png` with a 256-colour palette when it is larger than `max_kb`; its size in KB afterwards."""
    if png.stat().st_size > max_kb * 1024:
        from PIL import Image

        with Image.open(png) as im:
            small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(png, optimize=True)
    return png.stat().st_size // 1024


def main(argv: list[str] | None = None) -> int:
    """Command line: REPORT [--out PNG] [--width W] [--height H] [--max-kb N] [--chromium PATH]."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report folder (with index.html) or an HTML file")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots/report-first-screen.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument(
        "--height", type=int, default=900, help="900 = the first screen; larger for the whole page"
    )
    ap.add_argument("--max-kb", type=int, default=300, help="palette-compress above this size (0: never)")
    ap.add_argument("--chromium", default=None, help="browser executable (default: search PATH)")
    args = ap.parse_args(argv)
    png = screenshot(args.report, args.out, args.width, args.height, args.chromium)
    kb = shrink(png, args.max_kb) if args.max_kb else png.stat().st_size // 1024
    print(f"{png} ({kb} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

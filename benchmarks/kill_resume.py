"""The kill-and-resume campaign of issue 30: 20 SIGKILLs at seeded random points of two real experiments.

Runs the campaign of tests/core/test_kill_experiments.py (the same tiny `mlp-mnist` and `grokking-tickets`
settings, kill points and seeded plans), by default with figures drawn as in a real run, and prints one
Markdown row per kill: where the run was killed, and whether the rerun ended with the metrics, every
metrics.jsonl and the files of the uninterrupted run, byte for byte. Exit 1 if any rerun differs.

    PYTHONPATH=src python benchmarks/kill_resume.py [--seed 30] [--no-figures] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the campaign's machinery lives with its test

from tests.core.test_kill_experiments import (  # noqa: E402
    EXPERIMENTS,
    KILLS_PER_EXPERIMENT,
    POINTS,
    campaign,
    kill_and_rerun,
    run_clean,
)


def main() -> int:
    """Run the campaign and print its table; 0 when every rerun is identical."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=30, help="seed of the kill points (the test uses 30)")
    parser.add_argument("--no-figures", action="store_true", help="close figures undrawn, as the test does")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table to this file")
    args = parser.parse_args()
    figures = not args.no_figures
    rows = [
        "| # | experiment | killed at (k-th call) | interrupted | rerun identical | rerun s |",
        "|---|---|---|---|---|---|",
    ]
    bad = n = 0
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kill-resume-") as tmp:
        for name in EXPERIMENTS:
            clean = Path(tmp) / name / "clean"
            t0 = time.perf_counter()
            _, counts, first = run_clean(name, clean, figures)
            print(f"{name}: uninterrupted run {time.perf_counter() - t0:.1f} s; calls per point {counts}; "
                  f"{first} steps before the first checkpoint", flush=True)  # fmt: skip
            rng = random.Random(f"{args.seed}-{name}")
            for i, plan in enumerate(campaign(name, counts, first, KILLS_PER_EXPERIMENT[name], rng)):
                got = kill_and_rerun(name, Path(tmp) / name / f"run{i}", plan, clean, figures)
                n += 1
                bad += not got["identical"]
                where = " then ".join(f"`{k.point}` #{k.k}" for k in plan)
                what = "; then ".join(POINTS[k.point][0] for k in plan)
                same = "yes" if got["identical"] else f"**no** ({', '.join(got['differs'])})"
                rows.append(f"| {n} | {name} | {where} | {what} | {same} | {got['rerun_s']:.1f} |")
                print(rows[-1], flush=True)
    summary = f"{n - bad} of {n} reruns identical ({time.perf_counter() - t_all:.0f} s, figures {'drawn' if figures else 'not drawn'})"
    print("\n" + "\n".join(rows) + "\n\n" + summary)
    if args.markdown is not None:
        args.markdown.write_text("\n".join(rows) + "\n\n" + summary + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Re-time a finished `giorom-2d` run and summarise every claim over all timing passes: lowest, median, highest
value and in how many passes it holds (step times on a shared CPU vary by ±10 % from pass to pass, and claims (2)
and (3) sit within that of their bounds on some materials).

    python benchmarks/giorom_timing_passes.py runs/giorom-2d --passes 3     # 3 more passes, then the summary
    python benchmarks/giorom_timing_passes.py runs/giorom-2d                # the summary of the passes so far

A pass copies each material's `results.json` and `timing.json` and the top-level `result.json` to
RUN/passes/pass-<k>/, deletes them from the run, and runs `python -m sparsenets run giorom-2d --out RUN` again:
trained models and evaluations are reused, so only the timing phase and the reports rerun (about 3.5 min on 2
cores; a failed rerun puts the files back). Give the same `--set` overrides the run was made with. Keep the machine
otherwise idle. Rows that do not depend on time (MSE ratios, learned dynamics) read the same in every pass.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from sparsenets.experiments.giorom.report import claim_checks, linear_fit


def materials(run: Path) -> list[str]:
    """The material sub-folders of a finished run (those holding results.json)."""
    return sorted(p.parent.name for p in run.glob("*/results.json"))


def one_pass(run: Path, index: int, sets: list[str]) -> None:
    """Keep the current timing files as pass `index`, delete them, rerun the study (timing only); a failed rerun
    puts the kept files back and ends with one line."""
    keep = run / "passes" / f"pass-{index}"
    files = [Path(m) / name for m in materials(run) for name in ("results.json", "timing.json")]
    files = [f for f in files if (run / f).exists()] + [Path("result.json")]
    for f in files:
        (keep / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run / f, keep / f)
    for f in files:
        (run / f).unlink()
    cmd = [sys.executable, "-m", "sparsenets", "run", "giorom-2d", "--out", str(run)]
    cmd += [a for s in sets for a in ("--set", s)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        for f in files:
            shutil.copy2(keep / f, run / f)
        shutil.rmtree(keep)
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        print(f"pass {index + 1} failed, the run folder is as it was: `{' '.join(cmd)}` exited {done.returncode}: "
              f"{tail[0]}", file=sys.stderr)  # fmt: skip
        sys.exit(2)


def pass_results(run: Path, mat: str) -> list[dict[str, Any]]:
    """Every pass's results of one material: the archived passes in order, then the current one."""
    archived = sorted(
        run.glob(f"passes/pass-*/{mat}/results.json"), key=lambda p: int(p.parts[-3].split("-")[1])
    )
    return [json.loads(p.read_text()) for p in [*archived, run / mat / "results.json"]]


def summary(run: Path) -> str:
    """Markdown: per material, each claim's lowest / median / highest value over the passes and how often it holds."""
    out = []
    for mat in materials(run):
        results = pass_results(run, mat)
        rows: dict[str, list[Any]] = {}
        for res in results:
            for c in claim_checks(res):
                rows.setdefault(c.claim, [c.needed, [], 0])
                rows[c.claim][1].append(c.value)
                rows[c.claim][2] += int(c.ok)
        n = len(results)
        out.append(f"### {mat}: {n} timing pass{'es' if n > 1 else ''}\n")
        out.append("| claim | needed | lowest | median | highest | holds in |")
        out.append("|---|---|---|---|---|---|")
        for claim, (needed, values, holds) in rows.items():
            lo, med, hi = min(values), statistics.median(values), max(values)
            out.append(f"| {claim} | {needed} | {lo:.3g} | {med:.3g} | {hi:.3g} | {holds} of {n} |")
        q = [res["query_timing"] for res in results]
        med_ms = [statistics.median(col) for col in zip(*(t["decoder_ms"] for t in q))]
        _, slope, r2 = linear_fit(q[0]["n_query"], med_ms)
        out.append(f"\nDecoder time vs N_query, median over passes: {[round(v, 2) for v in med_ms]} ms at "
                   f"{q[0]['n_query']}; affine fit R² = {r2:.4f}, {1e3 * slope:.3g} µs/query.\n")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `sparsenets run giorom-2d` folder")
    parser.add_argument("--passes", type=int, default=0, help="timing passes to add (0: summarise only)")
    parser.add_argument("--set", action="append", default=[], help="the run's own --set overrides")
    args = parser.parse_args()
    if args.passes < 0:
        parser.error(f"--passes must be >= 0, got {args.passes}")
    if not (args.run / "result.json").exists() or not materials(args.run):
        parser.error(
            f"{args.run} is not a finished giorom-2d run (no result.json or */results.json); run it first"
        )
    start = len(list(args.run.glob("passes/pass-*")))
    for k in range(args.passes):
        print(f"pass {start + k + 2} ...", flush=True)
        one_pass(args.run, start + k + 1, args.set)
    print(summary(args.run))


if __name__ == "__main__":
    main()

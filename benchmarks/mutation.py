"""Mutation check (not in CI): apply meaningful mutations to core and method code one at a time, run the tests
that should notice, and report which mutants were killed and which survived.

Each mutant is one exact string replacement in one source file. It is applied to a private copy of the
repository (src/, tests/, docs/, benchmarks/ and the top-level files tests read) in a temporary folder, which is put first on PYTHONPATH; the
working tree is never written, so a crash or Ctrl-C cannot leave a mutant behind and no one working on the
tree sees one. A mutant whose original text is no longer in the source is reported as "stale" (update the
table below), not as killed.

    python benchmarks/mutation.py                       # every mutant
    python benchmarks/mutation.py --only M01 M05        # a subset
    python benchmarks/mutation.py --list                # the mutants and their tests
    python benchmarks/mutation.py --drop tests/core/test_pinned_behaviour.py   # without the pinned tests
    python benchmarks/mutation.py --markdown out.md     # also write the result table as Markdown

Exit status: 0 when every mutant that ran was killed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED = "tests/core/test_pinned_behaviour.py"
CLI = "tests/core/test_robust_cli.py"


@dataclass(frozen=True)
class Mutant:
    """One mutation: replace `old` (which must occur exactly once) by `new` in `src/sparsenets/<path>`."""

    id: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


MUTANTS: tuple[Mutant, ...] = (
    # the seven behaviours issue 30 found unpinned
    Mutant(
        "M01",
        "tickets/prune.py",
        "v.detach().abs() for k, v",
        "v.detach().clone() for k, v",
        (PINNED, "tests/tickets/test_tickets.py"),
        "magnitude scores on signed θ instead of |θ|",
    ),
    Mutant(
        "M02",
        "tickets/rewind.py",
        "if state.step in self.steps:\n            self.snapshots[state.step]",
        "if state.step + 1 in self.steps:\n            self.snapshots[state.step + 1]",
        (PINNED, "tests/tickets/test_tickets.py"),
        "rewinding to step t−1 instead of t",
    ),
    Mutant(
        "M03",
        "prox/simple.py",
        "r.double() / w.sqrt()",
        "r.double() * w.sqrt()",
        (PINNED, "tests/core/test_optim.py"),
        "weighted final top-k ranks by r·√w instead of r/√w",
    ),
    Mutant(
        "M04",
        "tickets/imp.py",
        "            scope=scope,",
        '            scope="global",',
        (PINNED, "tests/tickets/test_tickets.py"),
        "IMP ignores its scope",
    ),
    Mutant(
        "M05",
        "optim/proximal.py",
        "        ramp = self.ramp()",
        "        ramp = 1.0",
        (PINNED, "tests/core/test_optim.py"),
        "λ warm-up ramp dropped",
    ),
    Mutant(
        "M06",
        "data/sources.py",
        "    if (got := sha256_file(path)) != src.sha256:",
        "    if (got := sha256_file(path)) != src.sha256 and False:",
        (PINNED, "tests/core/test_data.py"),
        "pinned sha256 of downloaded packages not checked",
    ),
    Mutant(
        "M07",
        "masks.py",
        "        if grads:\n",
        "        if False:\n",
        (PINNED, "tests/core/test_masks.py"),
        "HoldMasks no longer masks gradients after backward",
    ),
    # further core and method behaviour
    Mutant(
        "M08",
        "optim/proximal.py",
        'tau = self.optimizer.param_groups[b.group_index]["lr"] * b.lam * ramp',
        "tau = b.lam * ramp",
        (PINNED, "tests/core/test_optim.py"),
        "prox step τ = λ instead of lr·λ",
    ),
    Mutant(
        "M09",
        "prox/simple.py",
        "    if k > 0:\n        out[torch.sort",
        "    if k > 1:\n        out[torch.sort",
        ("tests/core/test_optim.py", "tests/tickets/test_tickets.py"),
        "top-k of one selects nothing",
    ),
    Mutant(
        "M10",
        "prox/simple.py",
        "thr = tau if w is None else tau * w.to(r.dtype)",
        "thr = tau if w is None else tau * w.to(r.dtype).sqrt()",
        (PINNED, "tests/core/test_optim.py", "tests/core/test_prox_wgsef.py"),
        "group lasso threshold τ√w not τw",
    ),
    Mutant(
        "M11",
        "masks.py",
        "        if self._params:\n            torch._foreach_mul_(self._params, self._masks)",
        "        if False:\n            torch._foreach_mul_(self._params, self._masks)",
        (PINNED, "tests/core/test_masks.py", "tests/core/test_robust_masks.py"),
        "HoldMasks stops re-masking after a step",
    ),
    Mutant(
        "M12",
        "masks.py",
        "        if mask is None or not isinstance(param, nn.Parameter):",
        "        if True:",
        ("tests/core/test_masks.py", "tests/core/test_robust_masks.py"),
        "forward pre-hook re-zeroes nothing",
    ),
    Mutant(
        "M13",
        "tickets/rewind.py",
        "        table[n].copy_(t)\n    apply_masks_(module)",
        "        table[n].copy_(t)",
        (PINNED, "tests/tickets/test_tickets.py"),
        "rewind leaves pruned weights",
    ),
    Mutant(
        "M14",
        "tickets/prune.py",
        "return keep_per_level**level",
        "return keep_per_level ** (level + 1)",
        ("tests/tickets/test_tickets.py",),
        "IMP prunes one level too many",
    ),
    Mutant(
        "M15",
        "optim/proximal.py",
        "k = max(minimum, round(keep * m))",
        "k = max(minimum, int(keep * m))",
        ("tests/core/test_optim.py", "tests/core/test_groups.py"),
        "keep ratio floored instead of rounded",
    ),
    Mutant(
        "M16",
        "runs/configs.py",
        "        if not math.isfinite(value):",
        "        if False:",
        (CLI,),
        "config validation lets NaN/inf through",
    ),
    Mutant(
        "M17",
        "runs/configs.py",
        "        if rule is not None and not rule.allows(value):",
        "        if False:",
        (CLI,),
        "config validation ignores the range table",
    ),
    Mutant(
        "M18",
        "runs/configs.py",
        "            _check_value(name, v, a, shown)",
        "            pass",
        (CLI,),
        "list elements unchecked",
    ),
    Mutant("M19", "cli.py", "    if not path.strip():", "    if False:", (CLI,), "empty --out accepted"),
    Mutant(
        "M20",
        "cli.py",
        "            _remove_debris(top)",
        "            pass",
        (CLI,),
        "a run that rejects its config leaves its folder",
    ),
    Mutant(
        "M21",
        "data/arrays.py",
        '        if sha256_bytes(blob) != want.get("sha256"):',
        "        if False:",
        ("tests/core/test_robust_data.py",),
        "data cache read without its sha256 check",
    ),
    Mutant(
        "M22",
        "compact/shrink.py",
        "    if not worst <= check_tol:",
        "    if False:",
        ("tests/core/test_robust_compact.py",),
        "compact no longer compares outputs",
    ),
    Mutant(
        "M23",
        "train/checkpoint.py",
        '    if sha256_file(st_path) != meta.get("sha256"):',
        "    if False:",
        ("tests/core/test_checkpoint.py",),
        "checkpoint tensors loaded without their sha256 check",
    ),
    Mutant(
        "M24",
        "prox/wgsef.py",
        "u.sub_(t).clamp_(0, 1)",
        "u.sub_(t).clamp_(0, 2)",
        ("tests/core/test_prox_wgsef.py",),
        "WGSEF multipliers not clipped at 1",
    ),
    Mutant(
        "M25",
        "spectral/schedule.py",
        "        if step % self.config.period:\n            return",
        "        if (step + 1) % self.config.period:\n            return",
        ("tests/spectral/test_spectral_sst.py",),
        "SST resamples one step early",
    ),
    Mutant(
        "M26",
        "data/sources.py",
        "            if sha256_bytes(blob) == src.files[member]:",
        "            if True:",
        ("tests/core/test_cache_integrity.py",),
        "installed data files read without their pinned sha256",
    ),
    Mutant(
        "M27",
        "report/runs.py",
        "    if recorded is None:\n        return False",
        "    if True:\n        return False",
        ("tests/core/test_cache_integrity.py",),
        "a finished run's metrics.jsonl never checked against result.json",
    ),
    Mutant(
        "M28",
        "runs/execute.py",
        'folders = [run_dir, *(p for p in run_dir.rglob("*") if p.is_dir())] if run_dir.is_dir() else []',
        "folders = [run_dir]",
        ("tests/core/test_kill_experiments.py",),
        "dead temp files swept only at the top of the run folder",
    ),
)


def copy_tree(dest: Path) -> None:
    """The parts of the repository the tests read, copied (the working tree stays untouched)."""
    for name in ("src", "tests", "docs", "benchmarks"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "Makefile", "constraints.txt"):
        shutil.copy2(ROOT / name, dest / name)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float, show: bool = False) -> tuple[str, float]:
    """pytest on `tests` in `tree` (its src first on the path): 'pass', 'fail' or 'timeout', and seconds;
    `show` prints the tail of a failing run."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    if show and res.returncode != 0:
        print("\n".join((res.stdout + res.stderr).splitlines()[-25:]), file=sys.stderr)
    return ("pass" if res.returncode == 0 else "fail"), time.perf_counter() - t0


def mutate(tree: Path, m: Mutant) -> str | None:
    """Apply `m` in `tree`; returns the original text to restore, or None when `m.old` is not there once."""
    path = tree / "src" / "sparsenets" / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        return None
    path.write_text(text.replace(m.old, m.new))
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the mutants; print one line per mutant and a summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=None, help="mutant ids to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run")
    p.add_argument("--drop", nargs="*", default=[], help="test files left out of every mutant's run")
    p.add_argument("--markdown", default=None, help="also write the result table to this Markdown file")
    args = p.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only is None or m.id in args.only]
    # --drop shows which tests do the killing (e.g. how the mutants fare without the pinned tests)
    chosen = [dataclasses.replace(m, tests=tuple(t for t in m.tests if t not in args.drop)) for m in chosen]
    chosen = [m for m in chosen if m.tests]
    if args.list:
        for m in chosen:
            print(f"{m.id}  {m.path:22s} {m.what}  [{', '.join(m.tests)}]")
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsenets-mutation-") as d:
        tree = Path(d)
        copy_tree(tree)
        baseline = sorted({t for m in chosen for t in m.tests})
        status, secs = run_tests(tree, tuple(baseline), args.timeout * 2, show=True)
        print(f"baseline ({len(baseline)} test files): {status} in {secs:.0f} s", flush=True)
        if status != "pass":
            print("the unmutated tests do not pass; fix that first", file=sys.stderr)
            return 2
        for m in chosen:
            original = mutate(tree, m)
            if original is None:
                rows.append((m, "stale", 0.0))
            else:
                try:
                    status, secs = run_tests(tree, m.tests, args.timeout)
                finally:  # the copy is thrown away anyway; restoring keeps the next mutant single
                    (tree / "src" / "sparsenets" / m.path).write_text(original)
                verdict = {"pass": "SURVIVED", "fail": "killed", "timeout": "killed (timeout)"}[status]
                rows.append((m, verdict, secs))
            print(f"{m.id} {rows[-1][1]:16s} {rows[-1][2]:6.0f} s  {m.what}", flush=True)
    ran = [r for r in rows if r[1] != "stale"]
    killed = sum(r[1].startswith("killed") for r in ran)
    print(f"\nkilled {killed} of {len(ran)} mutants run ({len(rows) - len(ran)} stale)")
    if args.markdown:
        lines = ["| id | file | mutation | tests | result | s |", "|---|---|---|---|---|---|"]
        for m, verdict, secs in rows:
            tests = ", ".join(f"`{Path(t).name}`" for t in m.tests)
            what = m.what.replace("|", "\\|")  # a Markdown table cell escapes its pipes
            lines.append(f"| {m.id} | `{m.path}` | {what} | {tests} | {verdict} | {secs:.0f} |")
        lines.append(f"\nKilled {killed} of {len(ran)} mutants run ({len(rows) - len(ran)} stale).")
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0 if killed == len(ran) else 1


if __name__ == "__main__":
    sys.exit(main())

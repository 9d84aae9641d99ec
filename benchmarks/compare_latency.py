"""Re-time a finished `compare` run's budgets on a quiet machine with more repeats, then rebuild its tables.

    python benchmarks/compare_latency.py runs/compare-XXXX --repeat 150   # then: sparsenets run compare ... again

Writes RUN/latency.json (what the experiment's own latency pass writes, with `repeat` timed passes per model and
batch) and removes RUN/result.json so the next `sparsenets run compare` with the same config rebuilds the table
from the records and this latency (nothing is retrained).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sparsenets.experiments.compare import compare as C
from sparsenets.files import atomic_write_bytes


def main() -> None:
    """Measure every (model, budget) of the run with `--repeat` passes, one thread, and write latency.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--repeat", type=int, default=150)
    args = ap.parse_args()
    cfg = C.Config(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in json.loads((args.run / "run.json").read_text())["config"].items()})  # fmt: skip
    torch.set_num_threads(cfg.threads)
    out = {}
    for name, keeps in C._keeps(cfg).items():
        task = C._task(cfg, name, "cpu")
        for k in keeps:
            out[f"{name}/{k:g}"] = C.measure_budget(task, k, repeat=args.repeat)
            print(name, k, f"b64 x{out[f'{name}/{k:g}']['speedup_b64']:.2f}", flush=True)
    atomic_write_bytes(args.run / "latency.json", json.dumps(out, indent=1).encode())
    (args.run / "result.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

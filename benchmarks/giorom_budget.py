"""Is it the budget? Train GIOROM's sparse stepper (B, one M) on the study's water or jelly set for a given number of steps
and target convention, then roll it out on the test trajectories and compare its sparse rollout MSE with two
predictors that learn nothing ("stay put", "keep the last velocity"). The study trains every arm 500 steps;
this isolates B's stepper (cheap: ~0.1 s a step at M = 256) to see what more steps or GNS's target buy.

    PYTHONPATH=src python benchmarks/giorom_budget.py --m 256 --steps 1500 --target clean
    PYTHONPATH=src python benchmarks/giorom_budget.py --m 256 --steps 1500 --target gns
    PYTHONPATH=src python benchmarks/giorom_budget.py --material jelly --m 256 --steps 6000
    PYTHONPATH=src python benchmarks/giorom_budget.py --material jelly --m 256 --steps 1500 --wall-scale 4
    PYTHONPATH=src python benchmarks/giorom_budget.py --material jelly --m 256 --steps 500 --target gns --noise 1e-4 --seed 1

Same settings as `giorom-water2d` / `giorom-jelly2d` (N = 4096, 4-MP stepper, hidden 64, batch 1, Adam 1e-3 decayed to 1e-4,
noise σ = 3e-4 (`--noise`; `--noise-relative 0.4`: 0.4 × the set's acceleration std, jelly 1e-4), the spec's
target (`--target gns`: GNS's), R_sparse = R·√(N/M)); one seed (`--seed`); one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from sparsenets import giorom
from sparsenets.errors import SparsenetsError
from sparsenets.experiments.giorom import arms as A
from sparsenets.experiments.giorom.study import StudyConfig
from sparsenets.giorom import stepper as stepper_module
from sparsenets.giorom.metrics import rollout_mse
from sparsenets.train import Trainer

HORIZONS = [20, 50, 150]


def widen_walls(scale: float) -> None:
    """Clip the stepper's wall distances at scale·R instead of R in this process (a probe, not a library option:
    it rebinds the stepper module's `node_inputs`)."""
    original = stepper_module.node_inputs

    def node_inputs(
        window: torch.Tensor, vel_mean: torch.Tensor, vel_scale: torch.Tensor, low: torch.Tensor,
        high: torch.Tensor, radius: float, acc_norm: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:  # fmt: skip
        return original(window, vel_mean, vel_scale, low, high, radius * scale, acc_norm)

    stepper_module.node_inputs = node_inputs


def train(
    cfg: dict, material: str, m: int, steps: int, target: str, folder: Path, seed: int = 0
) -> tuple[giorom.Stepper, list[float]]:
    """B's stepper at `m` trained `steps` steps with `target`; returns it and its logged training losses."""
    data = A.load_split(material, cfg, "train")
    meta, n = data.metadata, data.positions.shape[2]
    arm = A.Arm(f"B{m}", "giorom", m, cfg["stepper_mp"], cfg["hidden"], meta["radius"] * math.sqrt(n / m))
    scfg = A.stepper_config(cfg, meta, arm)
    torch.manual_seed(seed)
    model = giorom.Stepper(scfg)
    ids = A.arm_ids(data, m, n, cfg["sampling"])
    batches = giorom.WindowBatches(data.positions, data.types, ids, scfg, cfg["batch_size"], seed, target)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, cfg["final_lr_fraction"] ** (1 / steps))
    Trainer(model, opt, batches, giorom.acceleration_loss, steps, scheduler=sched, run_dir=folder,
            log_every=max(1, steps // 10), progress=False, device="cpu").fit()  # fmt: skip
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return model, [r["loss"] for r in map(json.loads, lines) if r.get("split") == "train"]


def evaluate(
    cfg: dict, material: str, model: giorom.Stepper, m: int, trajectories: int
) -> dict[str, dict[int, float]]:
    """Sparse rollout MSE per horizon of the model, "stay put" and "constant velocity", mean over trajectories."""
    test = A.load_split(material, cfg, "test")
    ids = A.arm_ids(test, m, test.positions.shape[2], cfg["sampling"])
    c1, steps = A.HISTORY + 1, max(HORIZONS)
    out: dict[str, list[dict[int, float]]] = {"model": [], "stay put": [], "constant velocity": []}
    k_steps = torch.arange(1, steps + 1, dtype=torch.float32)[:, None, None]
    for k in range(trajectories):
        traj = test.positions[k][:, ids[k]]
        truth, last, prev = traj[c1 : c1 + steps], traj[c1 - 1], traj[c1 - 2]
        with torch.no_grad():
            run = giorom.rollout(model, traj[:c1].transpose(0, 1), steps, types=test.types[k, ids[k]])
        out["model"].append(rollout_mse(run.positions, truth, HORIZONS))
        out["stay put"].append(rollout_mse(last.expand(steps, -1, -1), truth, HORIZONS))
        out["constant velocity"].append(rollout_mse(last + (last - prev) * k_steps, truth, HORIZONS))
    return {name: {h: sum(r[h] for r in rs) / len(rs) for h in HORIZONS} for name, rs in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--material", choices=("water", "jelly"), default="water")
    parser.add_argument("--m", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1500)
    study = StudyConfig()
    parser.add_argument("--target", choices=giorom.windows.TARGETS, default=study.target)
    parser.add_argument("--noise", type=float, default=None, help="σ per frame (default: the study's, 3e-4)")
    parser.add_argument(
        "--noise-relative", type=float, default=None, help="σ as this fraction of the acc std"
    )
    parser.add_argument("--acc-history", action="store_true", help="also feed the past accelerations")
    parser.add_argument("--wall-scale", type=float, default=1.0, help="clip wall distances at this many R")
    parser.add_argument("--seed", type=int, default=0, help="weights and window draws")
    parser.add_argument("--trajectories", type=int, default=2, help="test trajectories rolled out")
    args = parser.parse_args()
    if not args.wall_scale > 0 or args.steps < 1:
        parser.error(f"--wall-scale must be > 0 and --steps >= 1, got {args.wall_scale} and {args.steps}")
    if args.wall_scale != 1.0:
        widen_walls(args.wall_scale)
    torch.set_num_threads(1)
    cfg = {**dataclasses.asdict(study), "acc_history": args.acc_history}
    try:
        # the study's set: `sparsenets run giorom-2d` makes it
        meta = A.load_split(args.material, cfg, "train").metadata
    except SparsenetsError as err:
        parser.error(str(err))
    if min(x for x in (args.noise, args.noise_relative, 0.0) if x is not None) < 0:
        parser.error(f"--noise and --noise-relative must be >= 0, got {args.noise} and {args.noise_relative}")
    if args.noise is not None and args.noise_relative is not None:
        parser.error("give --noise (σ per frame) or --noise-relative (a fraction of the acc std), not both")
    if args.noise is not None:
        cfg.update(noise_std=args.noise, noise_relative=False)
    elif args.noise_relative is not None:
        cfg.update(noise_std=args.noise_relative, noise_relative=True)
    args.noise = A.noise_sigma(cfg, meta)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model, losses = train(cfg, args.material, args.m, args.steps, args.target, Path(tmp), args.seed)
    seconds = time.perf_counter() - t0
    mse = evaluate(cfg, args.material, model, args.m, args.trajectories)
    print(f"{args.material}: B{args.m}, {args.steps} steps, target {args.target}, noise {args.noise:g}, acc history {args.acc_history}, walls at {args.wall_scale:g} R, seed {args.seed}: trained in {seconds:.0f} s; "
          f"loss {losses[0]:.2f} -> {losses[-1]:.2f} (logged {[round(x, 2) for x in losses]})")  # fmt: skip
    print("| predictor | " + " | ".join(f"sparse MSE @{h}" for h in HORIZONS) + " |")
    print("|---|" + "---|" * len(HORIZONS))
    for name, row in mse.items():
        print(f"| {name} | " + " | ".join(f"{row[h]:.3g}" for h in HORIZONS) + " |")


if __name__ == "__main__":
    main()

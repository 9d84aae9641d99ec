"""Cost of the WGSEF prox inside training: one VGG-16-BN (or ResNet-18) step with SGD vs SGD + prox over all
its coupled blocks.

Three optimizers step the same model on the same batch (128 × 1×28×28), interleaved round by round:
plain SGD (momentum), SGD + WGSEF prox with the sync-free sort sweep used for layers of up to 4096 groups
(blocks that share no parameter solved together in one padded sweep, as `ProxOptimizer` does; tables written
before session 7's batching timed one sweep per block), and SGD + WGSEF prox forced through `root_select`
one block at a time (the path before; on a GPU it reads back to the host several times per layer). Runs on
the CPU and, when present, on CUDA (`--devices` picks). `--model resnet18` times ResNet-18 instead (12 coupled
blocks; the residual streams overlap more layers, so the prox runs in three stages). Writes
docs/benchmarks/prox-step[-cuda][-resnet18].md.

    PYTHONPATH=src python benchmarks/bench_prox_step.py [--widths 0.125 0.25] [--steps 20] [--rounds 3]
        [--devices cpu cuda] [--model vgg16bn | resnet18]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import sparsenets.prox.wgsef as wgsef_module
from sparsenets.groups import coupled_layouts
from sparsenets.models.cnn import VGG16BN, ResNet18
from sparsenets.optim import ProxBlock, ProxOptimizer
from sparsenets.prox import PROXES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
SWEEP_MAX = wgsef_module._SWEEP_MAX


MODELS = {"vgg16bn": ("VGG-16-BN", VGG16BN), "resnet18": ("ResNet-18", ResNet18)}


def step_time(
    variant: str, width: float, device: torch.device, steps: int, model_name: str
) -> tuple[float, int]:
    """Median seconds of one training step of `variant` ("sgd", "sweep" or "select"), and the number of aten
    operator calls in one `opt.step()` (counted by the profiler after the timed steps; a proxy for kernel
    launches on a GPU)."""
    torch.manual_seed(0)
    model = MODELS[model_name][1](width=width).to(device)
    x = torch.randn(128, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if variant != "sgd":
        blocks = [ProxBlock(lay, 0.4, 0.02, PROXES["wgsef"]) for lay in coupled_layouts(model, x[:1])]
        opt = ProxOptimizer(opt, blocks)
    wgsef_module._SWEEP_MAX = 0 if variant == "select" else SWEEP_MAX
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(steps + 3):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sync()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    ops = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    wgsef_module._SWEEP_MAX = SWEEP_MAX
    return statistics.median(times), ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], help="cuda is skipped when absent")
    parser.add_argument("--model", choices=sorted(MODELS), default="vgg16bn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    for device in devices:
        rows = []
        for width in args.widths:
            got: dict[str, list[float]] = {"sgd": [], "sweep": [], "select": []}
            ops: dict[str, int] = {}
            for _ in range(args.rounds):  # interleaved so background load hits every variant alike
                for variant in got:
                    seconds, ops[variant] = step_time(variant, width, device, args.steps, args.model)
                    got[variant].append(seconds)
            med = {v: statistics.median(t) for v, t in got.items()}
            rows.append({"device": device.type, "width": width, **med, "ops": ops})
            print(
                f"{device.type} width {width}: SGD {1e3 * med['sgd']:.1f} ms, +prox sweep "
                f"{1e3 * med['sweep']:.1f} ms, +prox root_select {1e3 * med['select']:.1f} ms",
                flush=True,
            )
        write_table(rows, device, args)


def write_table(rows: list[dict], device: torch.device, args: argparse.Namespace) -> None:
    """One markdown table per device type: prox-step.md (CPU) or prox-step-cuda.md."""
    where = f"CPU with {args.threads} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    blocks = (
        "13 filter blocks" if args.model == "vgg16bn" else "12 coupled blocks, 4 of them residual streams"
    )
    lines = [
        f"## WGSEF prox inside a training step ({MODELS[args.model][0]}, batch 128, {blocks}, keep 0.4)",
        "",
        f"Written by `benchmarks/bench_prox_step.py` (median step time over {args.steps} steps, median of "
        f"{args.rounds} interleaved rounds; {where}).",
        "",
        "| device | width | SGD step ms | + prox (sweep) ms | overhead | + prox (root_select) ms | overhead "
        "| aten calls in opt.step (SGD / sweep / root_select) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o = r["ops"]
        lines.append(
            f"| {r['device']} | {r['width']:g} | {1e3 * r['sgd']:.2f} | {1e3 * r['sweep']:.2f} "
            f"| {r['sweep'] / r['sgd']:.2f}× | {1e3 * r['select']:.2f} | {r['select'] / r['sgd']:.2f}× "
            f"| {o['sgd']} / {o['sweep']} / {o['select']} |"
        )
    DOCS.mkdir(parents=True, exist_ok=True)
    name = "prox-step" + ("" if device.type == "cpu" else f"-{device.type}")
    name += ("" if args.model == "vgg16bn" else f"-{args.model}") + ".md"
    (DOCS / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

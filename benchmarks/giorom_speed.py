"""GIOROM speed on 2 CPU threads (`--threads`) (median of 50 rollout steps): stepper time vs M, decoder time vs N_query, and one
step of B (GIOROM-lite on M sampled particles + kernel decoder at N_query = N) vs A′ (GIOROM's stepper on all N) vs
the full GNS (A), split into graph, processor and decoder. Weights are untrained: a step's time depends on sizes
and graph degree, not on the weights. Positions are frame 0 of a generated MPM water trajectory.

Writes a Markdown table to stdout (and to --markdown PATH). Run:
    PYTHONPATH=src python benchmarks/giorom_speed.py [--n 4096] [--repeat 50] [--gns-mp 5] [--hidden 64]
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from sparsenets import giorom
from sparsenets.data import mpm
from sparsenets.experiments.giorom.arms import HISTORY
from sparsenets.experiments.giorom.timing import decoder_vs_queries, step_split
from sparsenets.runs import md_table


def _stepper(meta: dict, radius: float, n_mp: int, hidden: int) -> giorom.Stepper:
    stats = giorom.Statistics(
        tuple(meta["vel_mean"]), tuple(meta["vel_std"]), tuple(meta["acc_mean"]), tuple(meta["acc_std"]), 3e-4
    )
    bounds = tuple(tuple(b) for b in meta["bounds"])
    cfg = giorom.StepperConfig(stats, bounds, radius, history=HISTORY, hidden=hidden, n_mp=n_mp)
    return giorom.Stepper(cfg).eval()


def main(argv: list[str] | None = None) -> str:
    """Run the three measurements; return (and print) the Markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--gns-mp", type=int, default=5)
    ap.add_argument("--stepper-mp", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    ap.add_argument("--queries", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the claim's setting: 2)")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = {"n_particles": args.n, "frames": 12, "n_train": 1, "n_val": 1, "n_test": 1}
    mpm.generate("water", **params)
    ps = mpm.load_particles("water", "test", **params)
    meta, n, c1 = ps.metadata, args.n, HISTORY + 1
    ref, r_full = ps.reference[0], meta["radius"]
    dec_cfg = giorom.DecoderConfig(tuple(tuple(b) for b in meta["bounds"]))

    def split(m: int, n_mp: int, decode: bool) -> dict[str, float]:
        ids = torch.arange(n) if m == n else ps.fps_ids[0, :m]
        model = _stepper(meta, r_full * math.sqrt(n / m), n_mp, args.hidden)
        dec = giorom.KernelDecoder(dec_cfg).eval() if decode else None
        x_hist = ps.positions[0, :c1][:, ids].transpose(0, 1)
        with torch.no_grad():
            got = step_split(model, x_hist, ps.types[0, ids], args.repeat, dec, ref[ids], ref)
            # the baseline: the same decoder called afresh every step (no `bind`), as before the bound path
            got["unbound_ms"] = (
                step_split(model, x_hist, ps.types[0, ids], args.repeat, unbound(dec), ref[ids], ref)[
                    "decoder_ms"
                ]
                if dec is not None
                else 0.0
            )
        return got

    load = os.getloadavg()[0]
    rows = [["A: full GNS", n, args.gns_mp, *_cells(split(n, args.gns_mp, False))]]
    mp = args.stepper_mp
    rows.append(["A′: GIOROM stepper on all N", n, mp, *_cells(split(n, mp, False))])
    for m in sorted(args.sizes):
        rows.append([f"B: GIOROM-lite, N/M = {n // m}", m, mp, *_cells(split(m, mp, True))])
    head = [
        "arm",
        "particles stepped",
        "MP",
        "graph ms",
        "processor ms",
        "decoder ms",
        "stepper ms",
        "step ms",
        "decoder share",
        "decoder ms, unbound",
    ]
    dec = giorom.KernelDecoder(dec_cfg).eval()
    m = sorted(args.sizes)[len(args.sizes) // 2]
    ids = ps.fps_ids[0, :m]
    x_t = ps.positions[0, c1, ids]
    q_ms = decoder_vs_queries(dec, ref[ids], x_t, ref, args.queries, args.repeat)
    q_unbound = decoder_vs_queries(unbound(dec), ref[ids], x_t, ref, args.queries, args.repeat)
    out = [
        f"GIOROM step times, MPM water N = {n}, hidden {args.hidden}, {args.threads} torch thread(s), median of {args.repeat} "
        f"steps, untrained weights; 1-minute load average {load:.1f} at the start (above the core count, other "
        "processes shared the cores).\n",
        md_table(head, rows),
        f"Kernel decoder (grid {dec_cfg.grid}², M = {m}) time vs query points:\n",
        md_table(
            ["N_query", "decoder ms (bound)", "decoder ms, unbound"],
            [[q, t, u] for q, t, u in zip(args.queries, q_ms, q_unbound)],
        ),
    ]
    text = "\n".join(out)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    return text


def unbound(decoder: giorom.KernelDecoder | None) -> Callable[..., torch.Tensor] | None:
    """The decoder behind a plain function (no `bind`): rollouts then call it afresh every step."""
    if decoder is None:
        return None
    return lambda reference, positions, queries: decoder(reference, positions, queries)


def _cells(t: dict[str, float]) -> list[float | str]:
    share = f"{100 * t['decoder_ms'] / t['total_ms']:.1f} %" if t["decoder_ms"] else "—"
    unbound_ms: float | str = t["unbound_ms"] or "—"
    return [
        t["graph_ms"],
        t["processor_ms"],
        t["decoder_ms"],
        t["stepper_ms"],
        t["total_ms"],
        share,
        unbound_ms,
    ]


if __name__ == "__main__":
    main()

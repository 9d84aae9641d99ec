"""Does a deployment path close Turbo-VBI's LeNet-5 latency gap? Re-time the chosen (matched-error) Turbo-VBI
models of a finished `turbovbi-lenet5-mnist` run against their dense nets at batch 64 in three forms, each applied
to both nets alike: eager NCHW (the study's own figure), eager channels-last, and TorchScript frozen with
`torch.jit.optimize_for_inference` (weights pre-packed, conv + activation fused where oneDNN can).

    PYTHONPATH=src python benchmarks/turbovbi_frozen_latency.py runs/turbovbi-lenet5-mnist-XXXX [--repeat 60]

Prints one Markdown row per seed: FLOPs reduction, the 0.7 × FLOPs bar, and the speedup in each form with the
dense / compact milliseconds (median of interleaved rounds, `--threads` torch threads). Every form's logits are
checked against eager's first.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from torch import nn

from sparsenets.compact import compact, count_flops
from sparsenets.compact.measure import _interleaved_latency
from sparsenets.experiments.turbovbi import lenet5_mnist
from sparsenets.experiments.turbovbi.common import CNNStudyConfig, load_splits
from sparsenets.experiments.turbovbi.study import _chosen_model

ARM = "turbo-mrf2d"
FORMS = ("eager", "channels-last", "frozen")


class Frozen(nn.Module):
    """A frozen TorchScript module behind a plain `nn.Module` (a frozen module has no train/eval state)."""

    def __init__(self, frozen: torch.jit.ScriptModule) -> None:
        super().__init__()
        object.__setattr__(self, "frozen", frozen)  # not a child: eval() must not reach it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> logits [B, classes]."""
        return self.frozen(x)


def forms(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The three ways to run `model` on x [B, C, H, W]: name -> (callable module, its input)."""
    model = model.eval()
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(copy.deepcopy(model), x)))
    runs = ((model, x), (cl, x.contiguous(memory_format=torch.channels_last)), (Frozen(frozen), x))
    return dict(zip(FORMS, runs))


def timings(
    dense: nn.Module, small: nn.Module, x: torch.Tensor, repeat: int
) -> dict[str, tuple[float, float]]:
    """(dense, compact) seconds per form, each the median of 3 interleaved rounds (`compact.measure`'s); every
    form's logits must equal eager's (else the comparison is void)."""
    d, s = forms(dense, x), forms(small, x)
    with torch.no_grad():
        for runs in (d, s):
            want = runs["eager"][0](x)
            for name, (m, inp) in runs.items():
                if not torch.allclose(m(inp), want, rtol=1e-4, atol=1e-4):
                    raise SystemExit(f"{name} logits differ from eager; not timing")
    pairs = [run for k in FORMS for run in (d[k], s[k])]  # interleaved, so background load hits each alike
    times = _interleaved_latency(pairs, repeat)
    return {k: (times[2 * i], times[2 * i + 1]) for i, k in enumerate(FORMS)}


def main() -> None:
    """Time every seed's chosen Turbo-VBI model of the run and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the study's latency runs on 1)")
    args = ap.parse_args()
    missing = [f for f in ("run.json", "per_seed.json") if not (args.run / f).is_file()]
    if missing:
        ap.error(
            f"{args.run} has no {' or '.join(missing)}: give a finished turbovbi-lenet5-mnist run folder"
        )
    torch.set_num_threads(args.threads)
    raw = json.loads((args.run / "run.json").read_text())["config"]
    cfg = CNNStudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    spec = lenet5_mnist.SPEC
    example = load_splits(spec.dataset, cfg)[2][0][:1]
    x = example.expand(64, *example.shape[1:]).contiguous()
    per_seed = json.loads((args.run / "per_seed.json").read_text())
    print("| seed | FLOPs reduction | bar (0.7×) | " + " | ".join(f"speedup, {k}" for k in FORMS) + " |")
    print("|---|---|---|---|---|---|")
    for seed, chosen in per_seed.items():
        folder = args.run / f"seed-{seed}"
        dense, _ = _chosen_model(cfg, spec, int(seed), "dense", 0.0, folder)
        model, _ = _chosen_model(cfg, spec, int(seed), ARM, chosen[ARM]["threshold"], folder)
        dense, small = dense.cpu().eval(), compact(model.cpu().eval(), example)
        flops = count_flops(dense, example) / count_flops(small, example)
        got = timings(dense, small, x, args.repeat)
        cells = [f"{td / tc:.2f}× ({1e3 * td:.2f} / {1e3 * tc:.2f} ms)" for td, tc in got.values()]
        print(f"| {seed} | {flops:.2f}× | {0.7 * flops:.2f}× | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

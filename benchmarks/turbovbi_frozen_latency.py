"""Does a deployment path close Turbo-VBI's LeNet-5 latency gap? Re-time the chosen (matched-error) Turbo-VBI
models of a finished `turbovbi-lenet5-mnist` run against their dense nets at batch 64 in three forms, each applied
to both nets alike: eager NCHW (the study's own figure), eager channels-last, and TorchScript frozen with
`torch.jit.optimize_for_inference` (weights pre-packed, conv + activation fused where oneDNN can); `--compiled`
adds a fourth, `torch.compile` (inductor, with its weight freezing; needs a C++ compiler, ~30 s to compile).

    PYTHONPATH=src python benchmarks/turbovbi_frozen_latency.py runs/turbovbi-lenet5-mnist-XXXX [--repeat 60]
    PYTHONPATH=src python benchmarks/turbovbi_frozen_latency.py --widths 13 11 46 [--compiled]

Prints one Markdown row per seed: FLOPs reduction, the 0.7 × FLOPs bar, and the speedup in each form with the
dense / compact milliseconds (median of interleaved rounds, `--threads` torch threads). Every form's logits are
checked against eager's first. `--widths C1 C2 F1` needs no run: it times a LeNet-5 whose kept conv1 / conv2 /
fc1 widths are given (random weights, made by `compact` from a masked LeNet-5) against the dense one, since
latency depends on the shapes alone.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from torch import nn

from sparsenets.compact import compact, count_flops
from sparsenets.compact.measure import interleaved_latency
from sparsenets.experiments.turbovbi import lenet5_mnist
from sparsenets.experiments.turbovbi.common import CNNStudyConfig, load_splits
from sparsenets.experiments.turbovbi.study import chosen_model
from sparsenets.models.cnn import LeNet5

ARM = "turbo-mrf2d"
FORMS = ("eager", "channels-last", "frozen", "compiled")


class Frozen(nn.Module):
    """A frozen TorchScript module behind a plain `nn.Module` (a frozen module has no train/eval state)."""

    def __init__(self, frozen: torch.jit.ScriptModule) -> None:
        super().__init__()
        object.__setattr__(self, "frozen", frozen)  # not a child: eval() must not reach it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> logits [B, classes]."""
        return self.frozen(x)


def forms(
    model: nn.Module, x: torch.Tensor, compiled: bool = False
) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """The ways to run `model` on x [B, C, H, W] (the first three, or all four with `compiled`): name ->
    (callable module, its input)."""
    model = model.eval()
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(copy.deepcopy(model), x)))
    runs = [(model, x), (cl, x.contiguous(memory_format=torch.channels_last)), (Frozen(frozen), x)]
    if compiled:
        runs.append((_compiled(model, x), x))
    return dict(zip(FORMS, runs))


def _compiled(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """`torch.compile` of a copy of `model` with inductor's weight freezing, compiled by one call on x [B, C, H, W];
    a failed compile (no C++ compiler, say) ends the benchmark with one line."""
    import torch._inductor.config as inductor

    fast = torch.compile(copy.deepcopy(model))
    try:
        # compiling happens on the first call: freezing must be on then
        with torch.no_grad(), inductor.patch(freezing=True):
            fast(x)
    except Exception as err:  # inductor raises many types; any of them means "this form cannot run here"
        raise SystemExit(
            f"torch.compile failed here ({type(err).__name__}); run without --compiled"
        ) from None
    return fast


def timings(
    dense: nn.Module, small: nn.Module, x: torch.Tensor, repeat: int, compiled: bool = False
) -> dict[str, tuple[float, float]]:
    """(dense, compact) seconds per form, each the median of 3 interleaved rounds (`compact.measure`'s); every
    form's logits must equal eager's (else the comparison is void)."""
    d, s = forms(dense, x, compiled), forms(small, x, compiled)
    with torch.no_grad():
        for runs in (d, s):
            want = runs["eager"][0](x)
            for name, (m, inp) in runs.items():
                if not torch.allclose(m(inp), want, rtol=1e-4, atol=1e-4):
                    raise SystemExit(f"{name} logits differ from eager; not timing")
    names = list(d)
    pairs = [run for k in names for run in (d[k], s[k])]  # interleaved, so background load hits each alike
    times = interleaved_latency(pairs, repeat)
    return {k: (times[2 * i], times[2 * i + 1]) for i, k in enumerate(names)}


def kept_widths(widths: tuple[int, int, int], example: torch.Tensor) -> tuple[nn.Module, nn.Module]:
    """(dense LeNet-5, its compacted copy keeping the first `widths` = (conv1, conv2, fc1) units), random weights."""
    torch.manual_seed(0)
    dense = LeNet5().eval()
    masked = copy.deepcopy(dense)
    conv1, conv2, fc1, fc2 = [m for m in masked if isinstance(m, (nn.Conv2d, nn.Linear))]
    (c1, c2, f1), per_map = widths, fc1.in_features // conv2.out_channels  # fc1 reads 4×4 per conv2 map
    coupled = ((conv1, conv2, c1, 1), (conv2, fc1, c2, per_map), (fc1, fc2, f1, 1))
    with (
        torch.no_grad()
    ):  # zero each removed unit's whole coupled group: its row, bias and the reader's columns
        for layer, reader, keep, span in coupled:
            layer.weight[keep:], layer.bias[keep:] = 0.0, 0.0
            reader.weight[:, keep * span :] = 0.0
    return dense, compact(masked, example)


def _row(label: str, dense: nn.Module, small: nn.Module, x: torch.Tensor, args: argparse.Namespace) -> str:
    example = x[:1]
    flops = count_flops(dense, example) / count_flops(small, example)
    got = timings(dense, small, x, args.repeat, args.compiled)
    cells = [f"{td / tc:.2f}× ({1e3 * td:.2f} / {1e3 * tc:.2f} ms)" for td, tc in got.values()]
    return f"| {label} | {flops:.2f}× | {0.7 * flops:.2f}× | " + " | ".join(cells) + " |"


def main() -> None:
    """Time every seed's chosen Turbo-VBI model of the run and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", help="a finished turbovbi-lenet5-mnist run folder")
    ap.add_argument(
        "--widths", type=int, nargs=3, metavar=("C1", "C2", "F1"), help="time these kept widths instead"
    )
    ap.add_argument(
        "--compiled", action="store_true", help="add torch.compile (inductor, freezing) as a form"
    )
    ap.add_argument("--repeat", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the study's latency runs on 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = FORMS if args.compiled else FORMS[:3]
    header = "| {} | FLOPs reduction | bar (0.7×) | " + " | ".join(f"speedup, {k}" for k in names) + " |"
    rule = "|---" * (3 + len(names)) + "|"
    if args.widths:
        layers = [m for m in LeNet5() if isinstance(m, (nn.Conv2d, nn.Linear))][:3]  # conv1, conv2, fc1
        full = [m.out_features if isinstance(m, nn.Linear) else m.out_channels for m in layers]
        if args.run is not None or not all(0 < w <= f for w, f in zip(args.widths, full)):
            ap.error(f"give either a run folder or --widths C1 C2 F1, each in 1..{'/'.join(map(str, full))}")
        x = torch.randn(64, 1, 28, 28)
        dense, small = kept_widths(tuple(args.widths), x[:1])
        print(
            header.format("kept widths"),
            rule,
            _row("-".join(map(str, args.widths)), dense, small, x, args),
            sep="\n",
        )
        return
    if args.run is None:
        ap.error("give a finished turbovbi-lenet5-mnist run folder, or --widths C1 C2 F1")
    missing = [f for f in ("run.json", "per_seed.json") if not (args.run / f).is_file()]
    if missing:
        ap.error(
            f"{args.run} has no {' or '.join(missing)}: give a finished turbovbi-lenet5-mnist run folder"
        )
    raw = json.loads((args.run / "run.json").read_text())["config"]
    cfg = CNNStudyConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
    spec = lenet5_mnist.SPEC
    example = load_splits(spec.dataset, cfg)[2][0][:1]
    x = example.expand(64, *example.shape[1:]).contiguous()
    per_seed = json.loads((args.run / "per_seed.json").read_text())
    print(header.format("seed"), rule, sep="\n")
    for seed, chosen in per_seed.items():
        folder = args.run / f"seed-{seed}"
        dense, _ = chosen_model(cfg, spec, int(seed), "dense", 0.0, folder)
        model, _ = chosen_model(cfg, spec, int(seed), ARM, chosen[ARM]["threshold"], folder)
        dense, small = dense.cpu().eval(), compact(model.cpu().eval(), example)
        print(_row(seed, dense, small, x, args))


if __name__ == "__main__":
    main()

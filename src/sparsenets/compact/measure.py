"""Measuring a model and its compacted copy: parameters, FLOPs, wall-clock latency, the faster memory layout."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn

from sparsenets.errors import SparsenetsError

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def memory_format_of(model: nn.Module) -> str:
    """ "channels_last" if any 4-D parameter is stored channels-last (and not also plain contiguous), else
    "contiguous"."""
    for p in model.parameters():
        if p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last):
            return "channels_last"
    return "contiguous"


def fastest_memory_format(
    model: nn.Module, example_inputs: torch.Tensor, batch: int = 64, repeat: int = 6
) -> str:
    """The faster layout for `model` ("contiguous" or "channels_last"), timed interleaved on copies at `batch`
    copies of example_inputs[:1] (N, C, H, W) on the model's device; non-4-D inputs: "contiguous"."""
    if batch < 1 or repeat < 1:
        raise SparsenetsError(f"batch and repeat must be >= 1; got batch={batch}, repeat={repeat}")
    if example_inputs.dim() != 4:
        return "contiguous"
    device = next(model.parameters()).device
    x = example_inputs[:1].expand(batch, *example_inputs.shape[1:]).contiguous().to(device)
    formats = list(FORMATS)
    copies = [(copy.deepcopy(model).to(memory_format=FORMATS[f]), x) for f in formats]
    times = interleaved_latency(copies, repeat)
    return formats[times.index(min(times))]


def interleaved_latency(runs: Sequence[tuple[nn.Module, torch.Tensor]], repeat: int) -> list[float]:
    """Median seconds per (model, input), timed in 3 interleaved rounds so background load hits each alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(3):
        for i, (m, x) in enumerate(runs):
            times[i].append(latency(m, x, repeat=max(1, repeat // 3)))
    return [statistics.median(t) for t in times]


def count_params(model: nn.Module) -> int:
    """Number of parameter scalars."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, example_inputs: torch.Tensor) -> float:
    """FLOPs of one forward pass on `example_inputs` (2 × multiply-accumulates, as counted by Torch-Pruning)."""
    macs, _ = tp.utils.count_ops_and_params(model, example_inputs)
    return 2.0 * float(macs)


@torch.no_grad()
def latency(model: nn.Module, inputs: torch.Tensor, repeat: int = 20, warmup: int = 3) -> float:
    """Median wall-clock seconds of one forward pass on `inputs` (eval mode; CUDA synchronised when used)."""
    was = model.training
    model.eval()
    sync = torch.cuda.synchronize if inputs.is_cuda else (lambda: None)
    for _ in range(warmup):
        model(inputs)
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model(inputs)
        sync()
        times.append(time.perf_counter() - t0)
    model.train(was)
    return statistics.median(times)


def measure(
    dense: nn.Module,
    small: nn.Module,
    sample: torch.Tensor,
    batches: Sequence[int] = (1, 64),
    repeat: int = 20,
    layouts: str = "both",
) -> dict[str, float]:
    """Params, FLOPs and latency at each batch size for `dense` and `small`, with their ratios.

    Args:
        dense: the original (masked) model.
        small: its compacted copy.
        sample: (1, ...) one input; batches are made by repeating it.
        batches: batch sizes to time.
        repeat: timed forward passes per model, layout and batch (median reported); all variants alternate.
        layouts: "both": for 4-D inputs time each model in the default (NCHW) and in the channels-last
            memory layout (thin or odd channel counts run at different speeds in each); "default": NCHW only.

    Returns:
        A flat dict of floats: params_*, flops_*, latency_b{B}_{dense,compact} and speedup_b{B} in NCHW (both
        models in the same, default layout); with "both" also latency_cl_b{B}_*, speedup_cl_b{B} (both
        channels-last) and speedup_best_b{B} (each model in its faster layout).
    """
    if layouts not in ("both", "default"):
        raise SparsenetsError(f"layouts must be 'both' or 'default'; got {layouts!r}")
    out: dict[str, float] = {
        "params_dense": float(count_params(dense)),
        "params_compact": float(count_params(small)),
        "flops_dense": count_flops(dense, sample),
        "flops_compact": count_flops(small, sample),
    }
    out["flops_reduction"] = out["flops_dense"] / out["flops_compact"]
    out["params_reduction"] = out["params_dense"] / out["params_compact"]
    tags = [""] + (["cl_"] if layouts == "both" and sample.dim() == 4 else [])
    variants = [  # (key prefix, model); channels-last copies, so the caller's models keep their layout
        (f"latency_{tag}", role, m if not tag else copy.deepcopy(m).to(memory_format=torch.channels_last))
        for tag in tags
        for role, m in (("dense", dense), ("compact", small))
    ]
    for b in batches:
        x = sample.expand(b, *sample.shape[1:]).contiguous()
        xs = {"latency_": x, "latency_cl_": x.contiguous(memory_format=torch.channels_last)}
        times = interleaved_latency([(m, xs[prefix]) for prefix, _, m in variants], repeat)
        for (prefix, role, _), t in zip(variants, times):
            out[f"{prefix}b{b}_{role}"] = t
        for tag in tags:
            out[f"speedup_{tag}b{b}"] = out[f"latency_{tag}b{b}_dense"] / out[f"latency_{tag}b{b}_compact"]
        if len(tags) > 1:
            best = {r: min(out[f"latency_{t}b{b}_{r}"] for t in tags) for r in ("dense", "compact")}
            out[f"speedup_best_b{b}"] = best["dense"] / best["compact"]
    return out

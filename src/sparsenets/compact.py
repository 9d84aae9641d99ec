"""Compaction: turn zero groups into a physically smaller ordinary `nn.Module`, and measure both models.

`compact(model, example_inputs)` copies the model and removes, with Torch-Pruning, every coupled channel group
whose parameters are all zero (conv filter + bias + BatchNorm γ/β + the next layers' input slices), so the smaller
model computes the same function as the masked one. `measure` reports params, FLOPs (MACs × 2) and wall-clock
latency; `save_compact`/`load_compact` store a compacted model as safetensors plus a JSON description of its
layer shapes, rebuilding it from its class's keyword arguments rather than unpickling anything.
A compacted CNN's thin, odd channel counts often run much faster channels-last on the CPU, so `compact` can also
return the smaller model in its faster memory layout (`memory_format="auto"`); the layout is saved with it.
"""

from __future__ import annotations

import copy
import importlib
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from safetensors.torch import load_file, save_file
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.groups import coupled_layouts
from sparsenets.surgery import owner, replace_module

_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def compact(
    model: nn.Module,
    example_inputs: torch.Tensor,
    ignored_layers: Sequence[str] = (),
    tol: float = 0.0,
    memory_format: str = "keep",
) -> nn.Module:
    """A smaller copy of `model` without its all-zero coupled channel groups (the original is untouched).

    Args:
        model: a model whose removable groups are exactly zero (e.g. after `ProxOptimizer.finalize()`).
        example_inputs: a batch the model accepts (for tracing).
        ignored_layers: names of layers never shrunk (default: the classifier, the last Linear/Conv).
        tol: a group counts as zero when its norm is <= tol.
        memory_format: layout of the returned model's 4-D weights: "keep" (as `model`), "contiguous" (NCHW),
            "channels_last", or "auto" (whichever `fastest_memory_format` times faster). Inputs need no change:
            a channels-last convolution accepts NCHW inputs.

    Returns:
        An ordinary module of the same class with fewer channels; one channel is kept in a fully zero layer.
    """
    if memory_format not in ("keep", "auto", *_FORMATS):
        raise SparsenetsError(
            f"memory_format must be 'keep', 'auto', 'contiguous' or 'channels_last'; got {memory_format!r}"
        )
    small = copy.deepcopy(model).eval()
    modules = dict(small.named_modules())
    ignored = [modules[n] for n in ignored_layers] if ignored_layers else None
    plan = []  # decide everything first: pruning replaces the parameters the layouts point at
    for layout in coupled_layouts(small, example_inputs, ignored_layers=ignored):
        zero = torch.nonzero(layout.norms() <= tol).flatten().tolist()
        if len(zero) == layout.m:
            zero = zero[1:]  # a layer needs one channel; it carries zeros, so the function is unchanged
        if zero:
            plan.append((modules[layout.name], zero))
    dg = tp.DependencyGraph().build_dependency(small, example_inputs=example_inputs, verbose=False)
    for root, zero in plan:
        dg.get_pruning_group(root, dg.get_pruner_of_module(root).prune_out_channels, idxs=zero).prune()
    if memory_format == "auto":
        memory_format = fastest_memory_format(small, example_inputs)
    if memory_format != "keep":
        small.to(memory_format=_FORMATS[memory_format])
    return small


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
    formats = list(_FORMATS)
    copies = [(copy.deepcopy(model).to(memory_format=_FORMATS[f]), x) for f in formats]
    times = _interleaved_latency(copies, repeat)
    return formats[times.index(min(times))]


def _interleaved_latency(runs: Sequence[tuple[nn.Module, torch.Tensor]], repeat: int) -> list[float]:
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
        times = _interleaved_latency([(m, xs[prefix]) for prefix, _, m in variants], repeat)
        for (prefix, role, _), t in zip(variants, times):
            out[f"{prefix}b{b}_{role}"] = t
        for tag in tags:
            out[f"speedup_{tag}b{b}"] = out[f"latency_{tag}b{b}_dense"] / out[f"latency_{tag}b{b}_compact"]
        if len(tags) > 1:
            best = {r: min(out[f"latency_{t}b{b}_{r}"] for t in tags) for r in ("dense", "compact")}
            out[f"speedup_best_b{b}"] = best["dense"] / best["compact"]
    return out


_LAYER_ARGS = {
    nn.Conv1d: ("in_channels", "out_channels"),
    nn.Conv2d: ("in_channels", "out_channels"),
    nn.Conv3d: ("in_channels", "out_channels"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm3d: ("num_features",),
}


def describe(model: nn.Module) -> dict[str, Any]:
    """JSON-able structure of a compacted model: its builder (class path + keyword arguments) and the sizes of
    every resizable layer. The class must carry `build_kwargs` (the models in `sparsenets.models` do)."""
    kwargs = getattr(model, "build_kwargs", None)
    if kwargs is None:
        raise SparsenetsError(
            f"{type(model).__name__} has no build_kwargs; set model.build_kwargs to the keyword arguments that "
            "rebuild it, so it can be saved without pickling"
        )
    sizes = {}
    for name, mod in model.named_modules():
        for cls, fields in _LAYER_ARGS.items():
            if type(mod) is cls:
                sizes[name] = {f: int(getattr(mod, f)) for f in fields}
    return {
        "builder": f"{type(model).__module__}:{type(model).__qualname__}",
        "kwargs": kwargs,
        "sizes": sizes,
        "memory_format": memory_format_of(model),
    }


def save_compact(model: nn.Module, path: str | Path) -> None:
    """Write `path`.safetensors (state dict) and `path`.json (structure); no pickle involved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path.with_suffix(".safetensors")))
    path.with_suffix(".json").write_text(json.dumps(describe(model), indent=1))


def load_compact(path: str | Path) -> nn.Module:
    """Rebuild a model written by `save_compact`: build the class from its kwargs, resize layers, load weights.
    Only builders inside the `sparsenets` package are accepted."""
    path = Path(path)
    try:
        spec = json.loads(path.with_suffix(".json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SparsenetsError(f"cannot read the structure file {path.with_suffix('.json')}: {err}") from err
    module_name, _, cls_name = spec["builder"].partition(":")
    if not module_name.startswith("sparsenets."):
        raise SparsenetsError(f"refusing to build {spec['builder']!r}: only sparsenets models can be loaded")
    model = getattr(importlib.import_module(module_name), cls_name)(**spec["kwargs"])
    for name, sizes in spec["sizes"].items():
        _resize(model, name, sizes)
    model.load_state_dict(load_file(str(path.with_suffix(".safetensors"))))
    fmt = spec.get("memory_format", "contiguous")  # files written before session 7 have none: NCHW
    if fmt not in _FORMATS:
        raise SparsenetsError(f"{path.with_suffix('.json')}: unknown memory_format {fmt!r}")
    return model.to(memory_format=_FORMATS[fmt]).eval()


def _resize(model: nn.Module, name: str, sizes: dict[str, int]) -> None:
    """Replace layer `name` with a fresh one of the same kind and the recorded sizes."""
    parent, child = owner(model, name)
    old = parent.get_submodule(child)
    if all(getattr(old, f) == v for f, v in sizes.items()):
        return
    if isinstance(old, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        new = type(old)(
            sizes["in_channels"],
            sizes["out_channels"],
            old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            dilation=old.dilation,
            groups=old.groups if old.groups == 1 else sizes["out_channels"],
            bias=old.bias is not None,
        )
    elif isinstance(old, nn.Linear):
        new = nn.Linear(sizes["in_features"], sizes["out_features"], bias=old.bias is not None)
    else:
        new = type(old)(sizes["num_features"], eps=old.eps, momentum=old.momentum, affine=old.affine)
    replace_module(model, name, new)

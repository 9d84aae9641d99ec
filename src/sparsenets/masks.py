"""Binary weight masks for any `nn.Module`: `{parameter name: bool tensor}`, held as module buffers.

    masks = {"fc.weight": torch.rand(10, 784) > 0.5}
    attach_masks(model, masks)                  # buffers `fc.weight_mask`; DDP broadcasts them, checkpoints keep them
    trainer = Trainer(..., callbacks=[HoldMasks()])   # pruned weights stay exactly zero under any optimizer
    save_masks("ticket", masks)                 # ticket.safetensors + ticket.json (per-layer sparsity report)

A mask entry True means the weight is kept. Holding a mask has two halves: gradients of pruned weights are zeroed
after backward (so momentum and adaptive statistics never see them) and the weights are multiplied by the mask after
every optimizer step (so decoupled weight decay, stale momentum or any optimizer quirk cannot revive them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_save_safetensors, atomic_write_bytes
from sparsenets.surgery import owner as owner_of
from sparsenets.train.callbacks import Callback, TrainState

Masks = dict[str, torch.Tensor]
SUFFIX = "_mask"


def attach_masks(module: nn.Module, masks: Mapping[str, torch.Tensor], apply: bool = True) -> None:
    """Store `masks` as bool buffers `<param>_mask` next to their parameters (replacing earlier ones).

    Args:
        module: the model.
        masks: parameter name → bool tensor of that parameter's shape; parameters not named stay dense.
        apply: also zero the pruned weights now.
    """
    params = dict(module.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise SparsenetsError(
                f"mask names parameter {name!r}, which the model does not have; "
                f"known parameters: {', '.join(list(params)[:8])}{' ...' if len(params) > 8 else ''}"
            )
        if tuple(mask.shape) != tuple(params[name].shape):
            raise SparsenetsError(
                f"mask for {name!r} has shape {tuple(mask.shape)} but the parameter has {tuple(params[name].shape)}"
            )
        owner, leaf = owner_of(module, name)
        buf = mask.detach().to(device=params[name].device, dtype=torch.bool).clone()
        existing = getattr(owner, leaf + SUFFIX, None)
        if isinstance(existing, torch.Tensor) and leaf + SUFFIX in owner._buffers:
            existing.copy_(buf)
        else:
            owner.register_buffer(leaf + SUFFIX, buf)
    if apply:
        apply_masks_(module)


def detach_masks(module: nn.Module) -> None:
    """Remove every mask buffer (the weights keep their current values)."""
    for name in list(get_masks(module)):
        owner, leaf = owner_of(module, name)
        del owner._buffers[leaf + SUFFIX]


def get_masks(module: nn.Module) -> Masks:
    """The masks attached to `module`: parameter name → its bool mask buffer (the live buffer, not a copy)."""
    out: Masks = {}
    for name, _ in module.named_parameters():
        owner, leaf = owner_of(module, name)
        buf = owner._buffers.get(leaf + SUFFIX)
        if buf is not None:
            out[name] = buf
    return out


@torch.no_grad()
def apply_masks_(module: nn.Module) -> None:
    """Zero every pruned weight in place."""
    params = dict(module.named_parameters())
    for name, mask in get_masks(module).items():
        params[name].mul_(mask)


@torch.no_grad()
def mask_gradients_(module: nn.Module) -> None:
    """Zero the gradients of pruned weights in place (parameters without a gradient are skipped)."""
    params = dict(module.named_parameters())
    for name, mask in get_masks(module).items():
        if params[name].grad is not None:
            params[name].grad.mul_(mask)


class HoldMasks(Callback):
    """Trainer callback: pruned weights are zero at the start, get zero gradient, and are re-zeroed after each step.

    The (parameter, mask) pairs are read once at the start of training; masks attached later need a new `fit`.
    """

    def __init__(self) -> None:
        self._params: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    def on_train_start(self, state: TrainState) -> None:
        """Find the masked parameters and zero their pruned weights (also after a resume)."""
        params = dict(state.module.named_parameters())
        pairs = list(get_masks(state.module).items())
        self._params = [params[n] for n, _ in pairs]
        # float copies: multiplying by a float 0/1 tensor is several times faster than by a bool one
        self._masks = [m.to(params[n].dtype) for n, m in pairs]
        apply_masks_(state.module)

    @torch.no_grad()
    def after_backward(self, state: TrainState) -> None:
        """Pruned weights get no gradient, so optimizer statistics stay clean."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, [m for p, m in zip(self._params, self._masks) if p.grad is not None])

    @torch.no_grad()
    def after_step(self, state: TrainState) -> None:
        """Undo whatever the optimizer did to pruned weights (weight decay, stale momentum)."""
        if self._params:
            torch._foreach_mul_(self._params, self._masks)


def density(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of kept weights over all masked tensors (1 − sparsity)."""
    total = sum(m.numel() for m in masks.values())
    if total == 0:
        raise SparsenetsError("density of an empty mask set is undefined; pass at least one mask")
    return sum(int(m.sum()) for m in masks.values()) / total


def sparsity_report(masks: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Per-layer and overall counts: {"layers": {name: {"shape", "total", "kept", "density"}}, "total", "kept", "density"}."""
    layers = {
        name: {
            "shape": list(m.shape),
            "total": m.numel(),
            "kept": int(m.sum()),
            "density": int(m.sum()) / max(m.numel(), 1),
        }
        for name, m in masks.items()
    }
    total = sum(v["total"] for v in layers.values())
    kept = sum(v["kept"] for v in layers.values())
    return {"layers": layers, "total": total, "kept": kept, "density": kept / max(total, 1)}


def report_markdown(masks: Mapping[str, torch.Tensor]) -> str:
    """The sparsity report as a Markdown table (one row per layer and a total row)."""
    rep = sparsity_report(masks)
    rows = ["| tensor | shape | kept / total | density |", "|---|---|---|---|"]
    for name, v in rep["layers"].items():
        rows.append(
            f"| {name} | {'×'.join(map(str, v['shape']))} | {v['kept']:,} / {v['total']:,} | {v['density']:.4f} |"
        )
    rows.append(f"| **all** | | {rep['kept']:,} / {rep['total']:,} | {rep['density']:.4f} |")
    return "\n".join(rows)


def save_masks(
    path: Path | str, masks: Mapping[str, torch.Tensor], meta: Mapping[str, Any] | None = None
) -> Path:
    """Write `path`.safetensors (bool tensors) and `path`.json (sparsity report + `meta`, e.g. the group layout).

    Returns:
        The path of the safetensors file.
    """
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    base.parent.mkdir(parents=True, exist_ok=True)
    st = base.with_name(base.name + ".safetensors")
    atomic_save_safetensors({k: v.detach().to("cpu", torch.bool).contiguous() for k, v in masks.items()}, st)
    sidecar = {"format": "sparsenets-masks/1", "report": sparsity_report(masks), "meta": dict(meta or {})}
    atomic_write_bytes(base.with_name(base.name + ".json"), json.dumps(sidecar, indent=2).encode())
    return st


def load_masks(path: Path | str) -> tuple[Masks, dict[str, Any]]:
    """Read masks written by `save_masks`: (name → bool tensor, the sidecar's `meta`)."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    st, js = base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")
    if not st.exists():
        raise SparsenetsError(f"no mask file {st}; write one with sparsenets.masks.save_masks")
    masks = {k: v.to(torch.bool) for k, v in load_file(str(st)).items()}
    meta = json.loads(js.read_text()).get("meta", {}) if js.exists() else {}
    return masks, meta

"""Binary weight masks for any `nn.Module`: `{parameter name: bool tensor}`, held as module buffers.

    masks = {"fc.weight": torch.rand(10, 784) > 0.5}
    attach_masks(model, masks)                  # buffers `fc.weight_mask`; DDP broadcasts them, checkpoints keep them
    trainer = Trainer(..., callbacks=[HoldMasks()])   # pruned weights stay exactly zero under any optimizer
    save_masks("ticket", masks)                 # ticket.safetensors + ticket.json (per-layer sparsity report)

A mask entry True means the weight is kept. `attach_masks` enforces masks through PyTorch's own hooks, so any loop
and any optimizer keeps pruned weights at zero (as `torch.nn.utils.prune` does, but `.weight` stays a Parameter and
the state dict keeps its keys): a gradient hook on the parameter gives pruned weights a zero gradient (so momentum
and adaptive statistics never see them; with zero weight, zero gradient and zero state, SGD, Adam(W), RMSprop or
Adagrad leave them exactly 0 after every step, decoupled weight decay included), and a forward pre-hook on the
owning module re-zeroes them before each forward (optimizer state from before the masks were attached cannot leak
into an output). `HoldMasks` does the same inside `Trainer` and also re-zeroes them after each step.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_bytes
from torch import nn

from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_write_bytes, read_json, sha256_bytes, sha256_json
from sparsenets.surgery import owner as owner_of
from sparsenets.train.callbacks import Callback, TrainState

Masks = dict[str, torch.Tensor]
SUFFIX = "_mask"
FORMAT = "sparsenets-masks/2"
_GRAD_HOOKS: dict[int, tuple[weakref.ref, Any]] = {}  # id(parameter) -> (weak parameter, hook handle)


class _MaskGradient:
    """Tensor hook: the gradient of a masked parameter times its owner's current mask buffer (the owner is held
    weakly, so a deleted model is freed; a detached mask makes the hook a no-op)."""

    def __init__(self, owner: nn.Module, leaf: str) -> None:
        self.owner, self.leaf = weakref.ref(owner), leaf

    def __call__(self, grad: torch.Tensor) -> torch.Tensor:
        owner = self.owner()
        mask = None if owner is None else owner._buffers.get(self.leaf + SUFFIX)
        return grad if mask is None else grad * mask


def _hook_gradient(owner: nn.Module, leaf: str, param: torch.Tensor) -> None:
    """Register the gradient hook of `owner.<leaf>` once (copies of a module get theirs at their first forward)."""
    entry = _GRAD_HOOKS.get(id(param))
    if (entry is not None and entry[0]() is param) or not param.requires_grad:
        return
    key = id(param)
    ref = weakref.ref(param, lambda _: _GRAD_HOOKS.pop(key, None))  # a freed parameter leaves no entry
    _GRAD_HOOKS[key] = (ref, param.register_hook(_MaskGradient(owner, leaf)))


def _unhook_gradient(param: torch.Tensor) -> None:
    entry = _GRAD_HOOKS.pop(id(param), None)
    if entry is not None and entry[0]() is param:
        entry[1].remove()


def _zero_pruned(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: zero the pruned weights of `module`'s own parameters before it computes.

    A module-level function of the module alone, so `copy.deepcopy` and pickling carry it correctly. The write
    goes through `.data`, which leaves autograd's version counter alone: a module called twice in one forward
    (shared weights, recurrence) would otherwise fail in backward; the values it writes over are already zero
    except when an optimizer's stale state moved them, and then before anything in this forward used them.
    """
    for leaf, param in module._parameters.items():
        mask = module._buffers.get(leaf + SUFFIX)
        if mask is None or not isinstance(param, nn.Parameter):  # functional_call passes plain tensors: skip
            continue
        if mask.shape != param.shape:
            raise SparsenetsError(
                f"mask {leaf}{SUFFIX} {tuple(mask.shape)} no longer fits its parameter {tuple(param.shape)} (the "
                "layer was resized); call sparsenets.masks.detach_masks before changing layer shapes"
            )
        _hook_gradient(module, leaf, param)
        param.data.mul_(mask)


def _enforce(owner: nn.Module, leaf: str, param: torch.Tensor) -> None:
    """Hook `owner` (once) and `param` so that masks hold in any training loop."""
    if _zero_pruned not in owner._forward_pre_hooks.values():
        owner.register_forward_pre_hook(_zero_pruned)
    _hook_gradient(owner, leaf, param)


def attach_masks(module: nn.Module, masks: Mapping[str, torch.Tensor], apply: bool = True) -> None:
    """Store `masks` as bool buffers `<param>_mask` next to their parameters (replacing earlier ones) and enforce
    them in any loop: pruned weights get zero gradient and are zeroed before each forward of their module.

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
        _enforce(owner, leaf, params[name])
    if apply:
        apply_masks_(module)


def detach_masks(module: nn.Module) -> None:
    """Remove every mask buffer and its hooks (the weights keep their current values)."""
    params = dict(module.named_parameters())
    for name in list(get_masks(module)):
        owner, leaf = owner_of(module, name)
        del owner._buffers[leaf + SUFFIX]
        _unhook_gradient(params[name])
    for mod in module.modules():
        keep_hook = any(leaf + SUFFIX in mod._buffers for leaf in mod._parameters)
        for key in [k for k, fn in mod._forward_pre_hooks.items() if fn is _zero_pruned and not keep_hook]:
            del mod._forward_pre_hooks[key]


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


def _mask_paths(path: Path | str) -> tuple[Path, Path]:
    """(`path`.safetensors, `path`.json), with a trailing .safetensors/.json of `path` dropped first."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_masks(
    path: Path | str, masks: Mapping[str, torch.Tensor], meta: Mapping[str, Any] | None = None
) -> Path:
    """Write `path`.safetensors (bool tensors) and `path`.json (sparsity report + `meta`, e.g. the group layout,
    and the sha256 of the tensor file and of the sidecar itself, checked by `load_masks`). Both atomically.

    Returns:
        The path of the safetensors file.
    """
    st, js = _mask_paths(path)
    blob = safetensors_bytes({k: v.detach().to("cpu", torch.bool).contiguous() for k, v in masks.items()})
    sidecar: dict[str, Any] = {"format": FORMAT, "report": sparsity_report(masks), "meta": dict(meta or {})}
    sidecar["tensors_sha256"] = sha256_bytes(blob)
    try:
        sidecar["sidecar_sha256"] = sha256_json(sidecar)
    except (TypeError, ValueError) as err:  # fails before any file is written
        raise SparsenetsError(f"mask meta must be plain JSON: {err}") from None
    st.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(st, blob)
    atomic_write_bytes(js, json.dumps(sidecar, indent=2).encode())
    return st


def load_masks(path: Path | str) -> tuple[Masks, dict[str, Any]]:
    """Read masks written by `save_masks`: (name → bool tensor, the sidecar's `meta`).

    Raises:
        SparsenetsError: a missing file, or a tensor file or sidecar that fails its sha256 (one line).
    """
    st, js = _mask_paths(path)
    if not st.exists():
        raise SparsenetsError(f"no mask file {st}; write one with sparsenets.masks.save_masks")
    sidecar = read_json(js, "mask sidecar", "save the masks again")
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise SparsenetsError(f"{js} is not a {FORMAT} sidecar (no checksums); save the masks again")
    claimed = sidecar.pop("sidecar_sha256", None)
    if claimed != sha256_json(sidecar):
        raise SparsenetsError(f"{js} fails its checksum (the file was changed or damaged)")
    blob = st.read_bytes()
    if sha256_bytes(blob) != sidecar.get("tensors_sha256"):
        raise SparsenetsError(f"{st} fails its sha256 in {js.name} (the file was changed or damaged)")
    masks = {k: v.to(torch.bool) for k, v in safetensors_load(blob).items()}
    return masks, sidecar.get("meta", {})

"""Saving and loading compacted models without running code from a file.

`save_compact(model, "m")` writes `m.safetensors` (the state dict) and `m.json` (the architecture's name from the
allow-list, its keyword arguments, the size of every resizable layer, the memory layout, and the sha256 of both),
each atomically. `load_compact("m")` checks both hashes, rebuilds the architecture only from the allow-list
(`sparsenets.compact.architectures`), resizes its layers and loads the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_bytes
from torch import nn

from sparsenets.compact.architectures import Builder, architecture_name, resolve
from sparsenets.compact.measure import FORMATS, memory_format_of
from sparsenets.errors import SparsenetsError
from sparsenets.files import atomic_write_bytes, sha256_bytes, sha256_json
from sparsenets.surgery import replace_module

FORMAT = "sparsenets-compact/2"
_MAX_WIDTH = 1 << 24  # no real layer is wider; a crafted size must not allocate the machine's memory
_LAYER_ARGS = {
    nn.Conv1d: ("in_channels", "out_channels"),
    nn.Conv2d: ("in_channels", "out_channels"),
    nn.Conv3d: ("in_channels", "out_channels"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm3d: ("num_features",),
}


def compact_paths(path: str | Path) -> tuple[Path, Path]:
    """(`path`.safetensors, `path`.json); a trailing .safetensors/.json of `path` is dropped, any other suffix
    kept ("lenet.v1" and "lenet.v2" are two models)."""
    base = Path(path)
    base = base.with_suffix("") if base.suffix in (".safetensors", ".json") else base
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def describe(model: nn.Module, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """JSON-able structure of a compacted model: its architecture name, the keyword arguments that build it
    (`kwargs`, else `model.build_kwargs`, else none) and the sizes of every resizable layer."""
    kwargs = kwargs if kwargs is not None else getattr(model, "build_kwargs", None)
    if kwargs is None:
        kwargs = {}
        try:  # no recorded arguments: the class must build without any (layer sizes are restored after)
            type(model)()
        except TypeError as err:
            raise SparsenetsError(
                f"{type(model).__name__} cannot be built without arguments ({err}); pass "
                "save_compact(model, path, kwargs={...}) or set model.build_kwargs"
            ) from None
    try:
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise SparsenetsError(
            f"the build arguments of {type(model).__name__} are not plain JSON: {err}"
        ) from None
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise SparsenetsError(f"build arguments must be a dict of keyword arguments, got {kwargs!r}")
    sizes = {}
    for name, mod in model.named_modules():
        for cls, fields in _LAYER_ARGS.items():
            if type(mod) is cls:
                sizes[name] = {f: int(getattr(mod, f)) for f in fields}
    return {
        "builder": architecture_name(type(model)),
        "kwargs": kwargs,
        "sizes": sizes,
        "memory_format": memory_format_of(model),
    }


def save_compact(model: nn.Module, path: str | Path, kwargs: dict[str, Any] | None = None) -> Path:
    """Write `path`.safetensors (state dict) and `path`.json (structure and checksums); no pickle involved.

    Everything is checked before the first byte is written, and each file is written atomically (a temp file
    renamed into place). Loading a model of your own class needs `register_architecture(cls)` in the loading code.

    Args:
        model: the (compacted) model.
        path: base path; ".safetensors" and ".json" are appended.
        kwargs: keyword arguments that build the architecture (default: `model.build_kwargs`, else none).

    Returns:
        The path of the safetensors file.
    """
    st, js = compact_paths(path)
    spec = describe(model, kwargs)
    blob = safetensors_bytes({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()})
    spec = {"format": FORMAT, **spec, "tensors_sha256": sha256_bytes(blob)}
    spec["sidecar_sha256"] = sha256_json(spec)
    st.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(st, blob)
    atomic_write_bytes(js, json.dumps(spec, indent=1).encode())
    return st


def _read_verified(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """The checked description and state dict of a saved model, and the description's path."""
    st, js = compact_paths(path)
    try:
        spec = json.loads(js.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SparsenetsError(f"cannot read the structure file {js}: {err}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise SparsenetsError(f"{js} is not a {FORMAT} description (no checksums); save the model again")
    if spec.pop("sidecar_sha256", None) != sha256_json(spec):
        raise SparsenetsError(f"{js} fails its checksum (the file was changed or damaged)")
    try:
        blob = st.read_bytes()
    except OSError as err:
        raise SparsenetsError(f"cannot read the weights file {st}: {err}") from None
    if sha256_bytes(blob) != spec.get("tensors_sha256"):
        raise SparsenetsError(f"{st} fails its sha256 in {js.name} (the file was changed or damaged)")
    return spec, safetensors_load(blob), js


def load_compact(path: str | Path, builder: Builder | None = None) -> nn.Module:
    """Rebuild a model written by `save_compact`: verify both files, build the architecture, resize, load.

    Args:
        path: the base path given to `save_compact`.
        builder: the class (or function) to build instead of the recorded architecture name; without it the name
            must be one of the library's models or registered with `register_architecture`.

    Returns:
        The model in eval mode, in its saved memory layout.

    Raises:
        SparsenetsError: a missing, changed or damaged file, an architecture that is not allowed, or a
            description that does not fit the architecture (one line each).
    """
    spec, state, js = _read_verified(path)
    build = builder if builder is not None else resolve(spec.get("builder"), str(js))
    kwargs, sizes, fmt = spec.get("kwargs"), spec.get("sizes"), spec.get("memory_format", "contiguous")
    if not isinstance(kwargs, dict) or not isinstance(sizes, dict) or fmt not in FORMATS:
        raise SparsenetsError(
            f"{js}: kwargs and sizes must be objects and memory_format one of {list(FORMATS)}"
        )
    try:
        model = build(**kwargs)
    except (TypeError, ValueError, SparsenetsError) as err:
        raise SparsenetsError(f"{js}: cannot build {spec.get('builder')} with {kwargs}: {err}") from None
    if not isinstance(model, nn.Module):
        raise SparsenetsError(f"{js}: the builder returned {type(model).__name__}, not an nn.Module")
    for name, layer_sizes in sizes.items():
        _resize(model, name, layer_sizes, js)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise SparsenetsError(
            f"{js}: the weights do not fit the rebuilt model: {str(err).splitlines()[0]}"
        ) from None
    return model.to(memory_format=FORMATS[fmt]).eval()


def _resize(model: nn.Module, name: str, sizes: Any, source: Path) -> None:
    """Replace layer `name` with a fresh one of the same kind and the recorded sizes (checked first)."""
    try:
        old = model.get_submodule(name)
    except AttributeError:
        raise SparsenetsError(f"{source}: the rebuilt model has no layer {name!r}") from None
    fields = _LAYER_ARGS.get(type(old))
    ok = isinstance(sizes, dict) and fields is not None and set(sizes) == set(fields)
    if not ok or not all(type(v) is int and 0 < v <= _MAX_WIDTH for v in sizes.values()):
        raise SparsenetsError(f"{source}: bad sizes {sizes!r} for layer {name!r} ({type(old).__name__})")
    if all(getattr(old, f) == v for f, v in sizes.items()):
        return
    if isinstance(old, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        new: nn.Module = type(old)(
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

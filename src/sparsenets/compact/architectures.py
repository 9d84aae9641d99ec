"""The allow-list of architectures a saved compacted model may be rebuilt as: ours, and the user's own classes
registered by an explicit call in their code. A description file only names an entry; nothing is imported or
called because a file says so."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sparsenets.errors import SparsenetsError

Builder = Callable[..., nn.Module]
_REGISTERED: dict[str, Builder] = {}  # what user code registered in this process


def architecture_name(cls: type) -> str:
    """The name a description records for `cls`: its registered name, else "module:QualifiedName"."""
    for name, builder in {**_builtin(), **_REGISTERED}.items():
        if builder is cls:
            return name
    return f"{cls.__module__}:{cls.__qualname__}"


def _builtin() -> dict[str, Builder]:
    """The library's own models, by the names that files written since session 1 carry."""
    from sparsenets.models import char_transformer, cnn, grokking, lenet, mlp, seq2seq

    classes: list[type[nn.Module]] = [
        cnn.LeNet5,
        cnn.VGG16BN,
        cnn.ResNet18,
        lenet.LeNet300100,
        lenet.DemoCNN,
        mlp.MLP,
        grokking.GrokMLP,
        grokking.GrokTransformer,
        grokking.OmnigrokMLP,
        char_transformer.CharTransformer,
        seq2seq.Seq2SeqTransformer,
    ]
    return {f"{c.__module__}:{c.__qualname__}": c for c in classes}


def register_architecture(builder: Builder, name: str | None = None) -> str:
    """Allow `load_compact` to rebuild models of your own class (or from your own builder function).

    Args:
        builder: an `nn.Module` subclass, or a function returning a module, called with the saved keyword
            arguments (`model.build_kwargs` or `save_compact(..., kwargs=...)`; none by default).
        name: the name descriptions record (default "module:QualifiedName" of `builder`).

    Returns:
        The registered name.

    Raises:
        SparsenetsError: `builder` is not callable, or `name` is one of the library's own or taken by another.
    """
    if not callable(builder):
        raise SparsenetsError(
            f"register_architecture needs a class or function, got {type(builder).__name__}"
        )
    name = name or f"{builder.__module__}:{builder.__qualname__}"
    if name in _builtin() or _REGISTERED.get(name, builder) is not builder:
        raise SparsenetsError(f"architecture name {name!r} is already taken; pass another name=")
    _REGISTERED[name] = builder
    return name


def unregister_architecture(name: str) -> None:
    """Remove a name registered with `register_architecture` (unknown names are ignored)."""
    _REGISTERED.pop(name, None)


def resolve(name: object, source: str) -> Builder:
    """The builder allowed under `name`, which `source` (a file) names.

    Raises:
        SparsenetsError: `name` is not one of the library's models nor registered in this process.
    """
    allowed = {**_builtin(), **_REGISTERED}
    if not isinstance(name, str) or name not in allowed:
        raise SparsenetsError(
            f"{source} names architecture {name!r}, which is not allowed: only the models of sparsenets.models "
            "and classes registered in your code (sparsenets.compact.register_architecture(MyNet), or "
            "load_compact(path, builder=MyNet)) are rebuilt"
        )
    return allowed[name]

"""Compaction: turn zero groups into a physically smaller ordinary `nn.Module`, and measure both models.

`compact(model, example_inputs)` copies the model and removes, with Torch-Pruning, every coupled channel group
whose parameters are all zero (conv filter + bias + BatchNorm γ/β + the next layers' input slices), checks that
the smaller model computes the same outputs as the masked one on the example input (refusing a group layout that
does not fit the model), and returns it. `measure` reports params, FLOPs (MACs × 2) and wall-clock latency.
`save_compact`/`load_compact` store a compacted model as safetensors plus a checksummed JSON description of its
layer shapes, and rebuild it only as an allowed architecture (the library's models, or your own class after
`register_architecture(MyNet)`): nothing in a file is imported, unpickled or called.
A compacted CNN's thin, odd channel counts often run much faster channels-last on the CPU, so `compact` can also
return the smaller model in its faster memory layout (`memory_format="auto"`); the layout is saved with it.
"""

from sparsenets.compact.architectures import register_architecture, unregister_architecture
from sparsenets.compact.measure import (
    count_flops,
    count_params,
    fastest_memory_format,
    latency,
    measure,
    memory_format_of,
)
from sparsenets.compact.shrink import compact
from sparsenets.compact.storage import compact_paths, describe, load_compact, save_compact

__all__ = [
    "compact",
    "compact_paths",
    "count_flops",
    "count_params",
    "describe",
    "fastest_memory_format",
    "latency",
    "load_compact",
    "measure",
    "memory_format_of",
    "register_architecture",
    "save_compact",
    "unregister_architecture",
]

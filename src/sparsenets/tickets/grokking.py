"""Grokking times from an evaluation history: t_mem, t_gen, τ_grok (first strict crossings of a threshold)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def first_crossing(history: Sequence[Mapping[str, float]], key: str, threshold: float = 0.95) -> int | None:
    """The first logged step whose `key` is strictly above `threshold`, or None if it never is."""
    for rec in history:
        if key in rec and rec[key] > threshold:
            return int(rec["step"])
    return None


def grokking_times(
    history: Sequence[Mapping[str, float]],
    train_key: str = "train_accuracy",
    test_key: str = "test_accuracy",
    threshold: float = 0.95,
) -> dict[str, float | int | None]:
    """{"t_mem", "t_gen", "tau_grok" (= t_gen / t_mem), "gap" (= t_gen − t_mem)}; None where undefined."""
    t_mem = first_crossing(history, train_key, threshold)
    t_gen = first_crossing(history, test_key, threshold)
    both = t_mem is not None and t_gen is not None
    return {
        "t_mem": t_mem,
        "t_gen": t_gen,
        "tau_grok": (t_gen / t_mem if t_mem else None) if both else None,
        "gap": (t_gen - t_mem) if both else None,
    }

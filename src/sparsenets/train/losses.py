"""Training losses shared by the experiments: knowledge distillation from a dense teacher."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sparsenets.errors import ConfigError


def check_distill(alpha: float, temperature: float) -> None:
    """Raise a ConfigError unless 0 <= `alpha` <= 1 and `temperature` is a finite number > 0."""
    if not 0.0 <= alpha <= 1.0:  # NaN fails this too
        raise ConfigError(f"distill must be a weight in [0, 1] (0 turns distillation off); got {alpha}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"distill_temperature must be a finite number > 0 (4 is usual); got {temperature}")


def distill_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
) -> torch.Tensor:
    """Hinton-style distillation: (1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)).

    The T² factor keeps the soft term's gradient on the scale of the hard one as T changes.

    Args:
        student: (B, C) the trained model's logits.
        teacher: (B, C) the teacher's logits (no gradient flows into them).
        labels: (B,) integer class labels.
        alpha: weight of the soft term in [0, 1]; 0 is plain cross-entropy.
        temperature: T > 0, the softening of both distributions.

    Returns:
        () the mean loss over the batch.
    """
    check_distill(alpha, temperature)
    hard = F.cross_entropy(student, labels)
    if alpha == 0.0:
        return hard
    log_p = F.log_softmax(student / temperature, dim=-1)
    log_q = F.log_softmax(teacher.detach() / temperature, dim=-1)
    soft = F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * temperature**2
    return (1.0 - alpha) * hard + alpha * soft

"""The distillation objective: hard-label CE, soft-target KL at temperature T, hidden-state cosine.

A regression task (STS-B) has one output and no classes to soften: its hard term is the MSE against
the label and its soft term the MSE against the teacher's output, with no temperature.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    ce: float
    kd: float
    cos: float


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float):
    """T² · KL(teacher_T ‖ student_T), averaged over the batch.

    The T² factor keeps the gradient scale of the soft term independent of T (Hinton et al. 2015).
    """
    student_log_probs = F.log_softmax(student_logits / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return kl * temperature**2


def hidden_cosine_loss(
    student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Mean of 1 − cos(student, teacher) over the non-padding tokens of the last hidden states."""
    cosine = F.cosine_similarity(student_hidden, teacher_hidden.to(student_hidden.dtype), dim=-1)
    mask = attention_mask.to(cosine.dtype)
    return ((1.0 - cosine) * mask).sum() / mask.sum()


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    weights: LossWeights,
    temperature: float,
    hidden: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    regression: bool = False,
) -> dict[str, torch.Tensor]:
    """Return the weighted total and each unweighted term ("ce" and "kd" are MSEs for regression).

    `hidden` is (student_hidden, teacher_hidden, attention_mask); it is needed only when
    `weights.cos` > 0, and the cosine term is reported as 0 when it is not computed.
    """
    if regression:
        output = student_logits.squeeze(-1)
        ce = F.mse_loss(output, labels.to(output.dtype))
        kd = F.mse_loss(output, teacher_logits.squeeze(-1).to(output.dtype))
    else:
        ce = F.cross_entropy(student_logits, labels)
        kd = soft_target_kl(student_logits, teacher_logits, temperature)
    cos = hidden_cosine_loss(*hidden) if weights.cos > 0 else torch.zeros_like(ce)
    total = weights.ce * ce + weights.kd * kd + weights.cos * cos
    return {"loss": total, "ce": ce, "kd": kd, "cos": cos}

"""The distillation loss against hand computations with plain math."""

import math

import pytest
import torch

from trainables.losses import LossWeights, distillation_loss, hidden_cosine_loss, soft_target_kl


def softmax(values: list[float], temperature: float) -> list[float]:
    exps = [math.exp(v / temperature) for v in values]
    return [e / sum(exps) for e in exps]


def test_soft_target_kl_matches_hand_computation_including_t_squared() -> None:
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    temperature = 3.0
    expected = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p, q = softmax(t_row, temperature), softmax(s_row, temperature)
        expected += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    expected = expected / len(student) * temperature**2

    got = soft_target_kl(torch.tensor(student), torch.tensor(teacher), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kl_is_zero_when_student_equals_teacher() -> None:
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    assert soft_target_kl(logits, logits.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_loss_ignores_padding_tokens() -> None:
    student = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    teacher = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-5.0, 5.0]]])
    mask = torch.tensor([[1, 1, 0]])
    # token 1: cos = 1 → 0; token 2: cos = 0 → 1; token 3 is padding
    assert hidden_cosine_loss(student, teacher, mask).item() == pytest.approx(0.5)


def test_total_is_the_weighted_sum_of_the_terms() -> None:
    torch.manual_seed(0)
    student_logits, teacher_logits = torch.randn(4, 3), torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 1])
    hidden = (torch.randn(4, 5, 8), torch.randn(4, 5, 8), torch.ones(4, 5, dtype=torch.long))
    weights = LossWeights(ce=0.2, kd=0.7, cos=0.1)
    terms = distillation_loss(student_logits, teacher_logits, labels, weights, 2.0, hidden)

    ce = (
        -sum(
            math.log(softmax(row.tolist(), 1.0)[label])
            for row, label in zip(student_logits, labels.tolist(), strict=True)
        )
        / 4
    )
    assert terms["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert terms["kd"].item() == pytest.approx(soft_target_kl(student_logits, teacher_logits, 2.0).item())
    assert terms["cos"].item() == pytest.approx(hidden_cosine_loss(*hidden).item())
    expected = 0.2 * terms["ce"] + 0.7 * terms["kd"] + 0.1 * terms["cos"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_cosine_term_is_skipped_when_its_weight_is_zero() -> None:
    terms = distillation_loss(
        torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0, 1]), LossWeights(1.0, 1.0, 0.0), 1.0
    )
    assert terms["cos"].item() == 0.0

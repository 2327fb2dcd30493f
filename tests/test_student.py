"""Layer surgery on tiny models of every supported architecture, checked tensor by tensor."""

import pytest
import torch

from tests.conftest import ARCHITECTURES
from tests.families import tiny_classifier
from trainables.errors import ConfigError
from trainables.strategies.registry import select_layers
from trainables.student import build_student, find_layer_list


def layer_tensors(model: torch.nn.Module, index: int) -> dict[str, torch.Tensor]:
    """Parameters and buffers of block `index` (0-based), keyed by their name inside the block."""
    prefix = f"{find_layer_list(model)}.{index}."
    return {k[len(prefix) :]: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def outside_layers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    prefix = find_layer_list(model) + "."
    return {k: v for k, v in model.state_dict().items() if not k.startswith(prefix)}


def storages(model: torch.nn.Module) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in model.state_dict().values()}


@pytest.mark.parametrize("model_type", ARCHITECTURES)
@pytest.mark.parametrize("strategy", ["bottom", "top", "odd", "even", "uniform", "custom:6,1,4"])
def test_student_layer_i_equals_teacher_layer_map_i(model_type: str, strategy: str) -> None:
    teacher = tiny_classifier(model_type, layers=6)
    layers = select_layers(strategy, 6, 3)
    student = build_student(teacher, layers)

    assert student.config.num_hidden_layers == 3
    assert len(layer_tensors(student, 3)) == 0
    for i, teacher_layer in enumerate(layers):
        copied, original = layer_tensors(student, i), layer_tensors(teacher, teacher_layer - 1)
        assert copied.keys() == original.keys() and copied
        for name in original:
            assert torch.equal(copied[name], original[name]), (i, teacher_layer, name)
    student_rest, teacher_rest = outside_layers(student), outside_layers(teacher)
    assert student_rest.keys() == teacher_rest.keys()
    for name in teacher_rest:  # embeddings, pooler, classifier head, MPNet's relative bias
        if student_rest[name].shape != teacher_rest[name].shape:
            continue  # a head sized by the layer count (ESM's), rebuilt: tests/test_architectures.py
        assert torch.equal(student_rest[name], teacher_rest[name]), name
    assert not storages(student) & storages(teacher)


def test_mpnet_shared_relative_attention_bias_is_copied() -> None:
    teacher = tiny_classifier("mpnet", layers=6)
    student = build_student(teacher, [2, 5])
    bias = "mpnet.encoder.relative_attention_bias.weight"
    assert torch.equal(student.state_dict()[bias], teacher.state_dict()[bias])


def test_student_forward_matches_a_teacher_truncated_by_hand() -> None:
    """A bottom student computes exactly what the teacher's first K blocks compute."""
    teacher = tiny_classifier("bert", layers=6)
    student = build_student(teacher, [1, 2, 3]).eval()
    inputs = {
        "input_ids": torch.tensor([[5, 17, 42, 9, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0]]),
    }
    teacher.bert.encoder.layer = teacher.bert.encoder.layer[:3]
    with torch.no_grad():
        assert torch.allclose(student(**inputs).logits, teacher(**inputs).logits, atol=1e-6)


def test_strategies_give_different_students_and_leave_teacher_and_earlier_students_untouched() -> None:
    teacher = tiny_classifier("bert", layers=6)
    teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
    bottom = build_student(teacher, select_layers("bottom", 6, 3))
    bottom_before = {k: v.clone() for k, v in bottom.state_dict().items()}

    top = build_student(teacher, select_layers("top", 6, 3))
    with torch.no_grad():  # training the second student must not move the first or the teacher
        for parameter in top.parameters():
            parameter.add_(1.0)

    assert bottom is not top
    assert not storages(bottom) & storages(top)
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(bottom.state_dict()[key], top.state_dict()[key] - 1.0)
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[name])
    for name, value in bottom.state_dict().items():
        assert torch.equal(value, bottom_before[name])


def test_scratch_copies_no_layer() -> None:
    teacher = tiny_classifier("bert", layers=6)
    student = build_student(teacher, [], num_layers=3)
    assert student.config.num_hidden_layers == 3
    for i in range(3):
        for j in range(6):
            assert not torch.equal(
                layer_tensors(student, i)["attention.self.query.weight"],
                layer_tensors(teacher, j)["attention.self.query.weight"],
            )


def test_scratch_without_a_depth_is_rejected() -> None:
    with pytest.raises(ConfigError, match="needs num_layers"):
        build_student(tiny_classifier("bert"), [])


def test_a_model_without_a_findable_layer_list_is_rejected() -> None:
    teacher = tiny_classifier("bert", layers=6)
    teacher.config.num_hidden_layers = 5  # no ModuleList of 5 blocks exists
    with pytest.raises(
        ConfigError, match="Cannot find the layer list of BertForSequenceClassification"
    ) as error:
        build_student(teacher, [1, 2])
    assert "Gemma-2" in str(error.value) and "ALBERT" not in str(error.value)  # the supported families


def test_mpnet_student_computes_what_the_teacher_computes_with_only_the_chosen_blocks() -> None:
    """MPNet's one relative-attention bias serves every block: a student with DistilBERT's pick of
    layers equals the teacher run through those six blocks alone, with that bias."""
    from torch import nn

    from trainables.strategies.fixed import DISTILBERT_LAYERS

    teacher = tiny_classifier("mpnet", layers=12)
    student = build_student(teacher, DISTILBERT_LAYERS).eval()
    inputs = {
        "input_ids": torch.tensor([[0, 17, 42, 9, 2, 1], [0, 5, 6, 7, 8, 2]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]),
    }
    blocks = teacher.mpnet.encoder.layer
    teacher.mpnet.encoder.layer = nn.ModuleList(blocks[layer - 1] for layer in DISTILBERT_LAYERS)
    with torch.no_grad():
        torch.testing.assert_close(student(**inputs).logits, teacher(**inputs).logits, rtol=0, atol=1e-6)

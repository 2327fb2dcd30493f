"""Build a K-layer student from a teacher by copying chosen encoder layers.

The surgery is generic: it finds the teacher's one ModuleList of transformer blocks (BERT's
`encoder.layer`, DistilBERT's `transformer.layer`, ...), builds a fresh model of the same class with K
layers, and loads the teacher's state dict with the layer indices renumbered. Everything outside the
layer list — embeddings, MPNet's shared relative-attention bias, pooler, classifier head — is copied
as is, so the student starts with the teacher's fine-tuned head.
"""

import copy
from collections.abc import Sequence

import torch
from transformers import PreTrainedModel

from trainables.errors import ConfigError


def find_layer_list(model: PreTrainedModel) -> str:
    """Return the dotted name of the model's list of transformer blocks."""
    depth = model.config.num_hidden_layers
    found = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth
    ]
    if len(found) != 1:
        raise ConfigError(
            f"Cannot find the layer list of {type(model).__name__}: expected exactly one ModuleList "
            f"of {depth} blocks, found {found or 'none'}. Layer surgery supports encoders such as "
            f"BERT, RoBERTa, ELECTRA, MPNet and DistilBERT."
        )
    return found[0]


def build_student(
    teacher: PreTrainedModel, layers: Sequence[int], *, num_layers: int | None = None
) -> PreTrainedModel:
    """Return a new student whose layer i is a copy of teacher layer `layers[i]` (1-based).

    With `layers` empty (the `scratch` strategy), nothing is copied and the `num_layers`-layer student
    keeps its random initialisation. The student never shares storage with the teacher.
    """
    depth = len(layers) or num_layers
    if not depth:
        raise ConfigError("A scratch student needs num_layers: how many layers to build.")
    prefix = find_layer_list(teacher)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = depth
    student = type(teacher)(config).to(dtype=teacher.dtype, device=teacher.device)
    if layers:
        student.load_state_dict(_renumbered_state(teacher, prefix, layers), strict=True)
    return student


def _renumbered_state(
    teacher: PreTrainedModel, prefix: str, layers: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Teacher tensors keyed by student names: block `layers[i]-1` becomes block i; others unchanged."""
    student_index = {teacher_layer - 1: i for i, teacher_layer in enumerate(layers)}
    state = {}
    for name, tensor in teacher.state_dict().items():
        if not name.startswith(prefix + "."):
            state[name] = tensor
            continue
        index, rest = name[len(prefix) + 1 :].split(".", 1)
        if int(index) in student_index:
            state[f"{prefix}.{student_index[int(index)]}.{rest}"] = tensor
    return state

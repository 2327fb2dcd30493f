"""Build a K-layer student from a teacher by copying chosen layers, exactly, for every family.

The student is a fresh model of the teacher's class whose block i is a copy of teacher block
`layers[i]`. It computes exactly what the teacher computes when every layer outside `layers` passes
its input through unchanged. Everything outside the blocks (embeddings, shared relative-attention
biases, final norm, pooler, classifier head) is copied as is, so the student starts with the teacher's
fine-tuned head. What a family needs beyond that (per-layer config entries, a block that differs by
position, a head sized by the layer count) is its entry in `trainables.architectures`.
"""

from collections.abc import Sequence

import torch
from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from trainables.architectures import Architecture, adapter_for
from trainables.errors import ConfigError


def find_layer_list(model: PreTrainedModel) -> str:
    """The dotted name of the model's list of transformer blocks (e.g. BERT's `bert.encoder.layer`);
    ConfigError when there is not exactly one."""
    return adapter_for(model.config).layer_list_name(model)


def layer_list(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The model's list of transformer blocks."""
    return model.get_submodule(find_layer_list(model))


def build_student(
    teacher: PreTrainedModel, layers: Sequence[int], *, num_layers: int | None = None
) -> PreTrainedModel:
    """Return a new student whose layer i is a copy of teacher layer `layers[i]` (1-based).

    With `layers` empty (the `scratch` strategy), nothing is copied and the `num_layers`-layer student
    keeps its random initialisation (its per-layer settings are those of the teacher's first
    `num_layers` layers). The student is built on the teacher's device and dtype and never shares
    storage with it. Raises ConfigError for a family whose students cannot be built exactly.
    """
    depth = len(layers) or num_layers
    if not depth:
        raise ConfigError("A scratch student needs num_layers: how many layers to build.")
    architecture = adapter_for(teacher.config)
    architecture.check(teacher.config)
    find_layer_list(teacher)
    chosen = list(layers) or list(range(1, depth + 1))
    config = architecture.student_config(teacher.config, chosen)
    try:
        with torch.device(teacher.device):
            student = type(teacher)(config).to(dtype=teacher.dtype)
    except (AssertionError, ValueError, IndexError, KeyError, TypeError) as error:
        raise _unsupported(architecture, f"its class refuses the student's config: {error}") from None
    if layers:
        architecture.prepare_student(student, teacher, chosen)
        try:
            student.load_state_dict(architecture.student_state(teacher, student, chosen), strict=True)
        except RuntimeError as error:
            raise _unsupported(architecture, f"the copied weights do not fit its class: {error}") from None
    return student


def _unsupported(architecture: Architecture, why: str) -> ConfigError:
    return ConfigError(
        f"Layer surgery on {architecture.family} ({architecture.model_type}) does not give a student of "
        f"its class: {' '.join(why.split())[:400]}. This family needs its own entry in "
        f"trainables/architectures.py; docs/models.md lists the supported ones."
    )


def check_surgery(
    config: PretrainedConfig, student_layers: int | None = None, trust_remote_code: bool = False
) -> Architecture:
    """Refuse, from the teacher's config alone and before any compute, a teacher whose students
    cannot be built exactly; return its family's rules.

    With `student_layers`, the surgery also runs on the meta device (nothing is allocated) for the
    bottom and the top `student_layers` layers, so that a family the registry does not know fails
    here, with the reason, rather than in a trial. Raises ConfigError."""
    architecture = adapter_for(config)
    architecture.check(config)
    depth = config.num_hidden_layers
    if student_layers is None or not 1 <= student_layers < depth:
        return architecture  # the layer rules refuse a bad depth with their own message
    with torch.device("meta"):
        teacher = AutoModelForSequenceClassification.from_config(config, trust_remote_code=trust_remote_code)
    for first in (1, depth - student_layers + 1):
        build_student(teacher, list(range(first, first + student_layers)))
    return architecture

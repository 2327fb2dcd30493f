"""The strategies whose layers follow from the teacher's and the student's depths alone, the custom
list, and scratch (the control)."""

from __future__ import annotations

from trainables.errors import ConfigError
from trainables.strategies.registry import CUSTOM, Kind, Strategy, register_strategy

# DistilBERT's published choice for a 6-layer student of a 12-layer BERT: 0-based (0, 2, 4, 7, 9, 11).
DISTILBERT_LAYERS = (1, 3, 5, 8, 10, 12)


def _bottom(teacher_layers: int, student_layers: int) -> list[int]:
    return list(range(1, student_layers + 1))


def _top(teacher_layers: int, student_layers: int) -> list[int]:
    return list(range(teacher_layers - student_layers + 1, teacher_layers + 1))


def _parity(first: int, name: str):
    """Odd (first=1) or even (first=2) layers: defined only when there are exactly K of them."""

    def rule(teacher_layers: int, student_layers: int) -> list[int]:
        layers = list(range(first, teacher_layers + 1, 2))
        if len(layers) != student_layers:
            raise ConfigError(
                f"Strategy {name!r} takes every {name}-numbered layer; a {teacher_layers}-layer "
                f"teacher has {len(layers)} of them, not {student_layers}. Use 'uniform' or "
                f"'custom:...' for a {teacher_layers}→{student_layers} student."
            )
        return layers

    return rule


def _uniform(teacher_layers: int, student_layers: int) -> list[int]:
    """Layer round(i·L/K) for i = 1..K: evenly spaced and always ending at layer L."""
    step = teacher_layers / student_layers
    return [int(i * step + 0.5) for i in range(1, student_layers + 1)]


def _distilbert(teacher_layers: int, student_layers: int) -> list[int]:
    if (teacher_layers, student_layers) != (12, 6):
        raise ConfigError(
            f"Strategy 'distilbert' is DistilBERT's published 12→6 choice; it is undefined for "
            f"{teacher_layers}→{student_layers}. Use 'uniform' or 'custom:...' instead."
        )
    return list(DISTILBERT_LAYERS)


def _scratch(teacher_layers: int, student_layers: int) -> list[int]:
    return []


for _strategy in (
    Strategy("bottom", Kind.FIXED, "layers 1..K, nearest the embeddings", _bottom),
    Strategy("top", Kind.FIXED, "layers L-K+1..L, nearest the classifier", _top),
    Strategy("odd", Kind.FIXED, "layers 1, 3, 5, ...; only when there are exactly K", _parity(1, "odd")),
    Strategy("even", Kind.FIXED, "layers 2, 4, 6, ...; only when there are exactly K", _parity(2, "even")),
    Strategy("uniform", Kind.FIXED, "layer round(i·L/K) for i = 1..K, always including L", _uniform),
    Strategy("distilbert", Kind.FIXED, "DistilBERT's 12 → 6 choice, 1 3 5 8 10 12", _distilbert),
    Strategy(CUSTOM, Kind.CUSTOM, "exactly K distinct layers in 1..L, in the order given"),
    Strategy(
        "scratch", Kind.SCRATCH, "nothing copied: a randomly initialised student (the control)", _scratch
    ),
):
    register_strategy(_strategy)

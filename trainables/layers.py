"""Which teacher layers a K-layer student copies.

Layers are numbered from 1, and layer 1 is the one nearest the embeddings. "bottom" therefore means
the layers nearest the input and "top" the ones nearest the classifier.
"""

import itertools
import math
import random

from trainables.errors import ConfigError

# DistilBERT's published choice for a 6-layer student of a 12-layer BERT: 0-based (0, 2, 4, 7, 9, 11).
DISTILBERT_LAYERS = (1, 3, 5, 8, 10, 12)
# Strategies whose layers are chosen from data, on the fine-tuned teacher (trainables.layer_choice).
DATA_DRIVEN = ("auto:bi", "auto:drop")
STRATEGY_HELP = (
    "bottom, top, odd, even, uniform, distilbert, scratch, auto:bi, auto:drop, custom:<1-based "
    "layers> (e.g. custom:1,5,9), subsets:all (every set of K layers) or subsets:<N> (N random sets)"
)
SUBSETS = "subsets:"
# subsets:all names every K-subset only when there are at most this many (6 -> 3 has 20).
MAX_ALL_SUBSETS = 64


def expand_subsets(strategies: list[str], teacher_layers: int, student_layers: int, seed: int) -> list[str]:
    """`strategies` with each `subsets:all` replaced by a `custom:` strategy for every set of
    `student_layers` teacher layers (in lexicographic order), and each `subsets:<N>` by N distinct
    sets drawn at random by `seed` (then sorted); a set already listed is not listed twice."""
    expanded: list[str] = []
    for strategy in strategies:
        if not strategy.startswith(SUBSETS):
            expanded.append(strategy)
            continue
        _check_sizes(teacher_layers, student_layers)
        every = list(itertools.combinations(range(1, teacher_layers + 1), student_layers))
        count = strategy.removeprefix(SUBSETS)
        if count == "all":
            if len(every) > MAX_ALL_SUBSETS:
                raise ConfigError(
                    f"subsets:all would race all {len(every)} sets of {student_layers} of {teacher_layers} "
                    f"layers (at most {MAX_ALL_SUBSETS}); draw some with subsets:<N>, e.g. subsets:20."
                )
            chosen = every
        elif count.isdigit() and int(count) >= 1:
            if int(count) > len(every):
                raise ConfigError(
                    f"{strategy} asks for {count} sets, but {teacher_layers} layers have only "
                    f"{math.comb(teacher_layers, student_layers)} sets of {student_layers}; use subsets:all."
                )
            chosen = sorted(random.Random(seed).sample(every, int(count)))
        else:
            raise ConfigError(
                f"Cannot read {strategy!r}: use subsets:all or subsets:<N> with N >= 1, e.g. subsets:8."
            )
        expanded += [f"custom:{','.join(map(str, layers))}" for layers in chosen]
    return list(dict.fromkeys(expanded))


def is_data_driven(strategy: str) -> bool:
    return strategy.startswith("auto:")


def rule_layers(strategy: str, teacher_layers: int, student_layers: int) -> list[int] | None:
    """The layers of a fixed rule; None for a data-driven strategy, whose name is checked here and
    whose layers the study's teacher stage chooses."""
    if not is_data_driven(strategy):
        return select_layers(strategy, teacher_layers, student_layers)
    _check_sizes(teacher_layers, student_layers)
    if strategy not in DATA_DRIVEN:
        raise ConfigError(f"Unknown layer strategy {strategy!r}. Use one of: {STRATEGY_HELP}.")
    return None


def select_layers(strategy: str, teacher_layers: int, student_layers: int) -> list[int]:
    """Return the 1-based teacher layers the student copies, in student order.

    `scratch` returns an empty list: nothing is copied and the student is randomly initialised.
    """
    _check_sizes(teacher_layers, student_layers)
    if strategy.startswith("custom:"):
        return _custom(strategy, teacher_layers, student_layers)
    if is_data_driven(strategy):
        raise ConfigError(
            f"{strategy!r} chooses layers from data on the fine-tuned teacher (a study's teacher stage "
            f"does it once); to run such a trial by hand, pass the layers it chose as teacher_layers."
        )
    rule = _RULES.get(strategy)
    if rule is None:
        raise ConfigError(f"Unknown layer strategy {strategy!r}. Use one of: {STRATEGY_HELP}.")
    return rule(teacher_layers, student_layers)


def _check_sizes(teacher_layers: int, student_layers: int) -> None:
    if not 1 <= student_layers < teacher_layers:
        raise ConfigError(
            f"The student must have between 1 and {teacher_layers - 1} layers, fewer than its "
            f"{teacher_layers}-layer teacher; got {student_layers}. Set student_layers accordingly."
        )


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


def _custom(strategy: str, teacher_layers: int, student_layers: int) -> list[int]:
    text = strategy.removeprefix("custom:")
    try:
        layers = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"Cannot read {strategy!r}: custom layers are comma-separated 1-based integers, "
            f"e.g. custom:1,5,9."
        ) from None
    return check_layers(layers, teacher_layers, student_layers, strategy)


def check_layers(layers: list[int], teacher_layers: int, student_layers: int, strategy: str) -> list[int]:
    """`layers` if they are exactly `student_layers` distinct layers in 1..teacher_layers (or none,
    for a scratch student); else a ConfigError that names the fault."""
    if not layers:
        return []
    if len(layers) != student_layers:
        raise ConfigError(
            f"{strategy!r} lists {len(layers)} layers but the student has {student_layers}; "
            f"list exactly {student_layers}."
        )
    outside = [layer for layer in layers if not 1 <= layer <= teacher_layers]
    if outside:
        raise ConfigError(
            f"{strategy!r} names layers {outside} outside the teacher's 1..{teacher_layers} "
            f"(1 = nearest the embeddings)."
        )
    if len(set(layers)) != len(layers):
        raise ConfigError(f"{strategy!r} repeats a layer; each teacher layer may be copied once.")
    return list(layers)


_RULES = {
    "bottom": _bottom,
    "top": _top,
    "odd": _parity(1, "odd"),
    "even": _parity(2, "even"),
    "uniform": _uniform,
    "distilbert": _distilbert,
    "scratch": _scratch,
}

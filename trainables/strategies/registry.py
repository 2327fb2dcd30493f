"""The strategy registry: each strategy's name, kind, how it selects or scores layers, and what its
per-layer score is called. Layers are numbered from 1, and layer 1 is the one nearest the embeddings:
"bottom" means the layers nearest the input and "top" the ones nearest the classifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainables.errors import ConfigError
from trainables.registry import Registry
from trainables.vocabulary import Word

CUSTOM = "custom:"


class Kind(Word):
    """How a strategy gets its layers: from the depths alone, from a list the user gives, from data on
    the fine-tuned teacher (the study's teacher stage does it once), or none (a random student)."""

    FIXED = "fixed"
    CUSTOM = "custom"
    DATA_DRIVEN = "data-driven"
    SCRATCH = "scratch"


@dataclass(frozen=True)
class Strategy:
    """A registered strategy. `select(teacher_layers, student_layers)` gives a fixed rule's layers;
    `choose(teacher, batches, student_layers, task, dtype)` a data-driven rule's `Choice`; `score` names
    a data-driven rule's per-layer score (for plots); `rule` says what it does, for the help text."""

    name: str
    kind: Kind
    rule: str
    select: Callable[[int, int], list[int]] | None = None
    choose: Callable[..., Any] | None = None
    score: str = ""


_STRATEGIES: Registry[Strategy] = Registry("layer strategy")


def register_strategy(strategy: Strategy) -> Strategy:
    """Add a strategy to the registry (a name may be registered once)."""
    return _STRATEGIES.add(strategy.name, strategy)


def strategy_names() -> list[str]:
    """The registered names, fixed rules first, a custom list written as custom:<1-based layers>."""
    order = list(Kind)
    ranked = sorted(_STRATEGIES.values(), key=lambda s: order.index(s.kind))
    return [f"{s.name}<1-based layers>" if s.kind == Kind.CUSTOM else s.name for s in ranked]


def strategy_help() -> str:
    """The strategies for --help and error messages."""
    return ", ".join(strategy_names()) + " (e.g. custom:1,5,9), subsets:all or subsets:<N>"


def get_strategy(name: str) -> Strategy:
    """The registered strategy `name` (custom:... is the custom entry); ConfigError naming the
    registered ones otherwise."""
    key = CUSTOM if name.startswith(CUSTOM) else name
    if key not in _STRATEGIES:
        raise ConfigError(f"Unknown layer strategy {name!r}. Use one of: {strategy_help()}.")
    return _STRATEGIES[key]


def is_data_driven(name: str) -> bool:
    """Whether the study's teacher stage chooses the strategy's layers from data (an unknown name is
    an error)."""
    return get_strategy(name).kind == Kind.DATA_DRIVEN


def rule_layers(name: str, teacher_layers: int, student_layers: int) -> list[int] | None:
    """The layers of a fixed, custom or scratch strategy; None for a data-driven one, whose name and
    sizes are checked here and whose layers the study's teacher stage chooses."""
    check_sizes(teacher_layers, student_layers)
    if is_data_driven(name):
        return None
    return select_layers(name, teacher_layers, student_layers)


def select_layers(name: str, teacher_layers: int, student_layers: int) -> list[int]:
    """The 1-based teacher layers the student copies, in student order ([] for scratch: nothing is
    copied and the student is randomly initialised). A data-driven strategy has none without data."""
    check_sizes(teacher_layers, student_layers)
    strategy = get_strategy(name)
    if strategy.kind == Kind.DATA_DRIVEN:
        raise ConfigError(
            f"{name!r} chooses layers from data on the fine-tuned teacher (a study's teacher stage does it "
            f"once); to run such a trial by hand, pass the layers it chose as teacher_layers."
        )
    if strategy.kind == Kind.CUSTOM:
        return _custom(name, teacher_layers, student_layers)
    return strategy.select(teacher_layers, student_layers)


def check_sizes(teacher_layers: int, student_layers: int) -> None:
    if not 1 <= student_layers < teacher_layers:
        raise ConfigError(
            f"The student must have between 1 and {teacher_layers - 1} layers, fewer than its "
            f"{teacher_layers}-layer teacher; got {student_layers}. Set student_layers accordingly."
        )


def _custom(name: str, teacher_layers: int, student_layers: int) -> list[int]:
    text = name.removeprefix(CUSTOM)
    try:
        layers = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(
            f"Cannot read {name!r}: custom layers are comma-separated 1-based integers, e.g. custom:1,5,9."
        ) from None
    return check_layers(layers, teacher_layers, student_layers, name)


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

"""`subsets:all` and `subsets:<N>`: many `custom:` strategies at once, every set (or N random sets) of K
of the teacher's L layers, for a race over the layer sets themselves."""

from __future__ import annotations

import itertools
import math
import random

from trainables.errors import ConfigError
from trainables.strategies.registry import CUSTOM, check_sizes

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
        check_sizes(teacher_layers, student_layers)
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
        expanded += [f"{CUSTOM}{','.join(map(str, layers))}" for layers in chosen]
    return list(dict.fromkeys(expanded))

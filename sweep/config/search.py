"""The search section: the searched ranges, the sampler and ASHA early stopping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from trainables.config import TrialSettings
from trainables.errors import ConfigError
from trainables.settings import Count, Flag, Number, Seed, Whole, build, settings
from trainables.vocabulary import SEARCHED


def _range_mapping(bounds: Any) -> Any:
    """A range may be written [min, max] (log-scaled for lr) or as one number, which fixes it."""
    if isinstance(bounds, (int, float)) and not isinstance(bounds, bool):
        return {"min": bounds, "max": bounds}
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2:
        return {"min": bounds[0], "max": bounds[1]}
    return bounds


@settings
@dataclass
class Range:
    """A searched hyper-parameter: uniform on [min, max], log-uniform when `log`."""

    min: Number
    max: Number
    log: Flag = False

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def clip(self, value: float) -> float:
        """`value` moved into the range."""
        return min(max(value, self.min), self.max)


SearchRange = Annotated[Range, BeforeValidator(_range_mapping)]
# The most trials of one strategy a stage may plan (search samples, replicate seeds): every planned trial
# is listed before the study starts, and more than this is a typo, not a study.
MOST_TRIALS = 10_000


def _default_space() -> dict[str, Range]:
    return {
        "temperature": Range(1.0, 8.0),
        "alpha_ce": Range(0.0, 1.0),
        "alpha_kd": Range(0.0, 1.0),
        "alpha_cos": Range(0.0, 1.0),
        "lr": Range(1e-5, 2e-4, log=True),
    }


# The seed search trials train at: apart from the replicate seeds (counted from 0), so that no ranked
# trial repeats the trial its setting was chosen on.
SEARCH_SEED = 1_000_000


@settings
@dataclass
class SearchSpec:
    # per_strategy: each strategy gets its own search of num_samples trials (a fair contest);
    # joint: one search of num_samples trials samples the strategy like a hyper-parameter.
    mode: Literal["per_strategy", "joint"] = "per_strategy"
    num_samples: Annotated[Count, Field(le=MOST_TRIALS)] = 8
    # tpe: Optuna's TPE, after startup_trials trials sampled at random (the fixed setting counts as one);
    # random: every trial after the fixed setting sampled at random.
    sampler: Literal["tpe", "random"] = "tpe"
    # null: a third of num_samples (rounded up), at least 2, so that TPE models most of a search.
    startup_trials: Count | None = None
    seed: Seed = SEARCH_SEED  # the trials' seed during the search; the replicate seeds never reach it
    sampler_seed: Annotated[Whole, Field(ge=0, lt=2**32)] = 0
    # ASHA's first rung, in epochs; null: half the epochs, rounded up. Students that start near chance
    # (scratch, or a copied block that must relearn its head) often leave it only after a few epochs,
    # and a first rung at epoch 1 would judge every setting of theirs on the same chance accuracy.
    grace_period: Count | None = None
    reduction_factor: Annotated[Whole, Field(ge=2)] = 2
    space: dict[Literal[SEARCHED], SearchRange] = field(default_factory=_default_space)  # type: ignore[valid-type]

    def startup(self, first_points: int) -> int:
        """How many trials of a search (its `first_points` at the fixed setting included) come before
        TPE models the results; all of them for the random sampler."""
        if self.sampler == "random":
            return self.num_samples
        chosen = self.startup_trials or max(2, math.ceil(self.num_samples / 3))
        return max(chosen, first_points)

    def first_rung(self, epochs: int) -> int:
        """The epoch at which ASHA first compares trials (never after the last epoch)."""
        return min(self.grace_period or math.ceil(epochs / 2), epochs)

    @property
    def sampled(self) -> dict[str, Range]:
        """The ranges a search samples (a range of one value is a fixed setting)."""
        return {name: bounds for name, bounds in self.space.items() if not bounds.fixed}

    @property
    def pinned(self) -> dict[str, float]:
        """The hyper-parameters the space fixes to one value."""
        return {name: bounds.min for name, bounds in self.space.items() if bounds.fixed}


def check_space(space: dict[str, Range], trial: TrialSettings) -> None:
    """Ranges must be ordered and hold only values the trainable accepts."""
    for name, bounds in space.items():
        if bounds.min > bounds.max:
            raise ConfigError(f"search.space.{name} has min {bounds.min} > max {bounds.max}; swap them.")
        if bounds.log and bounds.min <= 0:
            raise ConfigError(f"search.space.{name} is log-scaled, so min must be > 0, got {bounds.min}.")
    lowest = {name: bounds.min for name, bounds in space.items()}
    if lowest.get("temperature", 1.0) <= 0:
        raise ConfigError(f"search.space.temperature must stay > 0, got min {lowest['temperature']}.")
    if lowest.get("lr", 1.0) <= 0:
        raise ConfigError(f"search.space.lr must stay > 0, got min {lowest['lr']}.")
    weights = ("alpha_ce", "alpha_kd", "alpha_cos")
    negative = [w for w in weights if lowest.get(w, 0.0) < 0]
    if negative:
        raise ConfigError(f"Loss weights cannot be negative: search.space ranges of {negative} go below 0.")
    for name, bounds in space.items():
        for bound in (bounds.min, bounds.max):
            try:
                build(TrialSettings, {name: bound}, "trial")
            except ConfigError as error:
                raise ConfigError(f"search.space.{name} reaches {bound}: {error} Narrow the range.") from None
    highest = [space[w].max if w in space else getattr(trial, w) for w in weights]
    if max(highest) <= 0:
        raise ConfigError(
            "The search space makes every loss weight 0 (alpha_ce, alpha_kd and alpha_cos all have "
            "max 0); give at least one of them a positive range."
        )

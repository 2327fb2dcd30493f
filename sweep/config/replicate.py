"""The replicate section: which seeds each strategy is replicated over, at which settings, and whether
the seeds run as a grid or as a race that drops the strategies that have already lost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from analysis.racing import MAX_SEEDS, MIN_SEEDS
from sweep.config.search import MOST_TRIALS
from trainables.errors import ConfigError
from trainables.settings import Count, Flag, Positive, Seed, Whole, settings

Alpha = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]


@settings
@dataclass
class ReplicateSpec:
    # grid: every strategy runs every seed. race: seeds run in rounds (the first min_seeds at once, then
    # one per surviving strategy), and after each round a strategy significantly worse than the
    # leader is dropped (analysis.racing: family-wise error at most alpha over all rounds).
    mode: Literal["grid", "race"] = "grid"
    # grid only: a count N (seeds 0..N-1), a list of seeds, or null: the fewest seeds that can decide a
    # tie. A race runs seeds 0..max_seeds-1.
    seeds: Annotated[Count, Field(le=MOST_TRIALS)] | list[Seed] | None = None
    # After a search, also replicate every strategy at the fixed settings: a second ranking beside
    # the tuned one. A strategy whose best search setting is the fixed one runs it twice, with equal
    # results (a trial is deterministic given its settings and seed).
    fixed: Flag = True
    # race: the first round that can drop a strategy, the last round, and the family-wise error.
    min_seeds: Annotated[Whole, Field(ge=2)] = MIN_SEEDS
    max_seeds: Count = MAX_SEEDS
    alpha: Alpha = 0.05
    # race: stop starting rounds once this many trials ran or this many hours passed (a round that has
    # started runs to its end); the ranking says the race was cut short.
    budget_trials: Count | None = None
    budget_hours: Positive | None = None

    def check(self) -> None:
        """Settings that contradict each other."""
        if self.mode == "grid":
            raced = [key for key in ("budget_trials", "budget_hours") if getattr(self, key) is not None]
            if raced:
                raise ConfigError(
                    f"replicate.{raced[0]} limits a race; set replicate.mode: race (or --race), or leave "
                    "it out."
                )
            return
        if self.max_seeds < self.min_seeds:
            raise ConfigError(
                f"replicate.max_seeds ({self.max_seeds}) is below replicate.min_seeds ({self.min_seeds}): "
                "the race must reach its first decision."
            )

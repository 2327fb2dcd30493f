"""The replicate section: the seeds each strategy is replicated over, and at which settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from sweep.config.search import MOST_TRIALS
from trainables.settings import Count, Flag, Seed, settings


@settings
@dataclass
class ReplicateSpec:
    # A count N (seeds 0..N-1), a list of seeds, or null: the fewest seeds that can decide a tie.
    seeds: Annotated[Count, Field(le=MOST_TRIALS)] | list[Seed] | None = None
    # After a search, also replicate every strategy at the fixed settings: a second ranking beside
    # the tuned one. A strategy whose best search setting is the fixed one runs it twice, with equal
    # results (a trial is deterministic given its settings and seed).
    fixed: Flag = True

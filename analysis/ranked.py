"""What a ranking is: the columns of ranking.csv, one ranked sample, and one ranked stage (shared by
the standard ranking, `analysis.ranking`, and the ranking of a race, `analysis.raced`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.aggregate import Sample
from analysis.names import BEST_CONFIG, TUNED_SETTING
from analysis.racing import Race
from analysis.results import Results
from analysis.stats import Ranking

# ranking.csv, one row per strategy (per aggregation where a stage is ranked twice), best first.
COLUMNS = [
    "rank",  # 1 = best mean; equal means share a rank; empty when nothing was usable
    "strategy",
    "teacher_layers",  # 1-based teacher layers copied into the student; empty for scratch
    "n",  # observations ranked (seeds; configuration/seed pairs for mean_over_configs)
    "n_excluded",  # failed, unfinished, metric-less or stopped-early trials left out
    "mean",
    "std",  # ddof 1
    "median",
    "ci_low",  # 95% percentile-bootstrap CI of the mean
    "ci_high",
    "mean_rank",  # mean within-seed rank over the seeds every strategy has (1 = best)
    "p_vs_best",  # Holm-corrected two-sided p against the best; empty for the best itself
    "p_uncorrected",
    "tied_with_best",  # p_vs_best > 0.05 (True for the best); empty where the test cannot decide
    "test",  # wilcoxon (paired over the seeds both have) or mannwhitneyu (too few shared seeds)
    "retention",  # mean / teacher_score, for eval_<metric> only (empty for other metrics)
    "teacher_score",  # teacher_<metric>: the teacher's score on the validation set
    "init_score",  # init_<metric>: mean score of the student before training
    "student_params",
    "aggregation",  # mean_over_seeds; tuned_setting / fixed_setting; best_config / mean_over_configs
    "setting",  # the trials' config/setting (tuned, fixed, search); empty when absent or mixed
    "config",  # the configuration ranked, for best_config
    "metric",
    "excluded",  # "seed 2: failed: RuntimeError: ..."; one entry per excluded trial
    # A raced stage only (analysis.raced): winner, leader, undecided, dropped or withdrawn; the round
    # it was dropped after (or the last round run); the nominal p its last comparison had to reach.
    "race_status",
    "race_round",
    "race_threshold",
]


@dataclass(frozen=True)
class RankedSample:
    """One ranking with the sample it was computed from; `ranking.table` has all COLUMNS. `race` is
    the race that decided it, for a raced stage (its decisions replace the tests against the best)."""

    sample: Sample
    ranking: Ranking
    race: Race | None = None


@dataclass(frozen=True)
class RankedStage:
    """Everything ranked from one stage, ready to write out: one RankedSample per way the stage is
    ranked (e.g. the tuned and the fixed setting). `budget` is the epochs a search trial had to run
    to be ranked (None outside the search stage)."""

    results: Results
    stage: str
    metric: str
    mode: str
    reduce: str
    ranked: list[RankedSample]
    notes: list[str]
    budget: float | None = None

    @property
    def table(self) -> pd.DataFrame:
        """All rankings as one table: one row per strategy (and aggregation), best first."""
        return pd.concat([r.ranking.table for r in self.ranked], ignore_index=True)

    def heading(self, ranked: RankedSample) -> str:
        """E.g. "replicate stage, tuned setting"."""
        return f"{self.stage} stage, {ranked.sample.aggregation.replace('_', ' ')}"


def top_strategy(study: RankedStage) -> str | None:
    """The rank-1 strategy: of the tuned-setting ranking when the replicate stage ran two
    settings, of the best-configuration ranking for the search stage, else of the one ranking
    (the first listed where several share rank 1); None when nothing was ranked."""
    preferred = [r for r in study.ranked if r.sample.aggregation in (TUNED_SETTING, BEST_CONFIG)]
    chosen = (preferred or study.ranked)[:1]
    return chosen[0].ranking.first if chosen else None

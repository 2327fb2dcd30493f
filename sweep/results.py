"""A stage read back from Ray's experiment folder(s): whether every trial ended, and the best trials.

The per-trial table (trials.csv) and everything ranked from it are `analysis.results`' job; the study
only needs Ray's trial objects to know a stage was interrupted and where a trial's checkpoint is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainables.config import SEARCHED
from trainables.metrics import EPOCH, direction

TERMINATED, ERROR = "TERMINATED", "ERROR"


@dataclass
class StageResults:
    stage: str
    paths: list[str]
    trials: list = field(default_factory=list)

    @property
    def unfinished(self) -> list:
        """Trials neither finished nor failed: the stage was interrupted."""
        return [t for t in self.trials if t.status not in (TERMINATED, ERROR)]

    @property
    def failed(self) -> list:
        return [t for t in self.trials if t.status == ERROR]

    def finished(self, metric: str, strategy: str | None = None) -> list:
        return [
            t
            for t in self.trials
            if t.status == TERMINATED
            and _number(t.last_result.get(metric))
            and strategy in (None, t.config.get("strategy"))
        ]


def load_stage(paths: list[str], stage: str) -> StageResults:
    from analysis.results import experiment

    trials = [trial for path in paths for trial in experiment(path).trials]
    return StageResults(stage, paths, trials)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ranked_trials(results: StageResults, metric: str, strategy: str | None = None) -> list:
    """The finished trials (of `strategy`, if given), best final value of `metric` first, those that
    ran their full budget (not stopped early by ASHA) before the others; ties in creation order (the
    sort is stable), as `analysis.aggregate.best_config_sample` breaks them."""
    sign = 1 if direction(metric) == "max" else -1
    trials = results.finished(metric, strategy)
    return sorted(
        trials, key=lambda t: (t.last_result.get(EPOCH, 0), sign * t.last_result[metric]), reverse=True
    )


def best_trial(results: StageResults, metric: str, strategy: str | None = None):
    """The first of `ranked_trials`, or None."""
    return next(iter(ranked_trials(results, metric, strategy)), None)


def best_hyperparameters(
    results: StageResults, strategies: list[str], metric: str, fallback: dict[str, dict]
) -> tuple[dict[str, dict], dict[str, str]]:
    """Each strategy's best search trial's hyper-parameters, and where each came from. A strategy
    with no finished trial keeps the fixed settings."""
    chosen, sources = {}, {}
    for strategy in strategies:
        best = best_trial(results, metric, strategy)
        if best is None:
            chosen[strategy], sources[strategy] = fallback[strategy], "fixed (no finished search trial)"
            continue
        chosen[strategy] = {name: best.config[name] for name in SEARCHED}
        sources[strategy] = f"trial {best.trial_id}: {best.last_result[metric]:.4f}"
    return chosen, sources

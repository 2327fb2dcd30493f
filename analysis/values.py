"""Each trial's value for the metric ranked by, and why a trial cannot be ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.names import CONFIG_PREFIX, EPOCHS, ERROR, NOT_METRICS, RAY_BOOKKEEPING, STATUS, TRIAL_ID
from analysis.results import NO_ERROR_TEXT, InputError, Results
from trainables.vocabulary import TrialStatus

REDUCTIONS = ("last", "max", "min")
_NOT_FINISHED = {
    TrialStatus.RUNNING: "still running (or the sweep stopped before it finished)",
    TrialStatus.PENDING: "never started",
    TrialStatus.PAUSED: "paused, not finished",
}


def available_metrics(trials: pd.DataFrame) -> list[str]:
    """Numeric per-trial columns that measure something, i.e. what can be ranked by."""
    return sorted(
        column
        for column in trials
        if column not in NOT_METRICS
        and column not in RAY_BOOKKEEPING
        and not column.startswith(CONFIG_PREFIX)
        and pd.api.types.is_numeric_dtype(trials[column])
        and trials[column].notna().any()
    )


def trial_values(results: Results, metric: str, reduce: str = "last") -> pd.DataFrame:
    """Each trial with its `value` for the metric and, if it cannot be ranked, why (`excluded`).

    `reduce` picks the value: "last" reported (default), or the "max" / "min" over the
    trial's reports, which needs the per-epoch history (not held by a per-trial CSV).
    """
    available = available_metrics(results.trials)
    if metric not in available:
        counts = results.trials[STATUS].value_counts()
        statuses = ", ".join(f"{count} {status}" for status, count in counts.items())
        raise InputError(
            f"No trial reported the metric '{metric}' ({len(results.trials)} trials: {statuses}). "
            f"Available metrics: {', '.join(available) or 'none'}. Pass one of them with --metric."
        )
    trials = results.trials.copy()
    trials["value"] = _reduced(results, metric, reduce)
    trials["excluded"] = [_exclusion(row, metric) for _, row in trials.iterrows()]
    return trials


def _reduced(results: Results, metric: str, reduce: str) -> pd.Series:
    if reduce not in REDUCTIONS:
        raise InputError(f"Unknown reduction '{reduce}'; choose one of {', '.join(REDUCTIONS)}.")
    if reduce == "last":
        return results.trials[metric].astype(float)
    if results.history.empty:
        raise InputError(
            f"--reduce {reduce} needs each trial's per-epoch history, which a per-trial CSV "
            "does not hold; rank the experiment folder instead, or use --reduce last."
        )
    per_trial = results.history.groupby(TRIAL_ID)[metric].agg(reduce)
    return results.trials[TRIAL_ID].map(per_trial).astype(float)


def _exclusion(trial: pd.Series, metric: str) -> str:
    """Why a trial cannot be ranked, or "" if it can."""
    status = trial[STATUS]
    if status == TrialStatus.ERROR:
        return "failed" if trial[ERROR] in ("", NO_ERROR_TEXT) else f"failed: {trial[ERROR]}"
    if status != TrialStatus.TERMINATED:
        return _NOT_FINISHED.get(status, f"status {status}")
    if pd.isna(trial["value"]):
        return f"reported no {metric}"
    if not np.isfinite(trial["value"]):
        return f"reported a non-finite {metric}"
    return ""


def full_budget(values: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """Excludes the trials a scheduler stopped early, so that every trial ranked had the same
    budget: its value after fewer epochs would compare a shorter training with a longer one.

    The budget is the most epochs any trial ran; returns the values and the budget (None when
    the trials do not say how many epochs they ran).
    """
    if EPOCHS not in values or values[EPOCHS].isna().all():
        return values, None
    budget = float(values[EPOCHS].max())
    short = (values["excluded"] == "") & (values[EPOCHS] < budget)
    reasons = values.loc[short, EPOCHS].map(lambda n: f"stopped early by the scheduler after {n:g} epoch(s)")
    return values.assign(excluded=values["excluded"].mask(short, reasons)), budget

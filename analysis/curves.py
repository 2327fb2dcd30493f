"""Learning curves from each trial's per-epoch reports: the curve per strategy that the plot draws,
and whether the students were still improving when training stopped."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.names import TRAINING_ITERATION, TRIAL_ID
from trainables.vocabulary import EPOCH, STRATEGY


def reports(history: pd.DataFrame, trials: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """The reports of `trials` that carry the metric, each with its strategy, and their clock: the
    epoch where every report has one, else the training iteration."""
    rows = history.drop(columns=[STRATEGY], errors="ignore").merge(trials[[TRIAL_ID, STRATEGY]], on=TRIAL_ID)
    rows = rows[rows[metric].notna()]
    clock = EPOCH if EPOCH in rows and rows[EPOCH].notna().all() else TRAINING_ITERATION
    return rows, clock


def last_epoch_change(history: pd.DataFrame, trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Per strategy, over each trial's last epoch: the mean change of the metric, how many trials
    improved (rose, or fell for mode "min"), and of how many (trials whose last two reports with the
    metric are one epoch apart; `eval_every` > 1 leaves gaps)."""
    rows, clock = reports(history, trials, metric)
    last_two = rows.sort_values(clock, kind="stable").groupby(TRIAL_ID).tail(2)
    ends = last_two.groupby(TRIAL_ID).agg(
        strategy=(STRATEGY, "first"),
        n=(metric, "size"),
        change=(metric, lambda v: v.iloc[-1] - v.iloc[0]),
        span=(clock, lambda v: v.iloc[-1] - v.iloc[0]),
    )
    ends = ends[(ends["n"] == 2) & (ends["span"] == 1)]
    better = ends["change"] > 0 if mode == "max" else ends["change"] < 0
    return (
        ends.assign(improved=better)
        .groupby(STRATEGY)
        .agg(mean_change=("change", "mean"), improved=("improved", "sum"), trials=("change", "size"))
    )


def last_epoch_sentence(
    history: pd.DataFrame, trials: pd.DataFrame, metric: str, mode: str, order: Sequence[str]
) -> str:
    """E.g. "Over each trial's last epoch, eval_accuracy changed by: bottom +0.012 (rose in 3 of 3
    trials), ..." in ranking order; "" without per-epoch reports."""
    if history.empty or metric not in history:
        return ""
    changes = last_epoch_change(history, trials, metric, mode)
    direction = "rose" if mode == "max" else "fell"
    parts = [
        f"{row.Index} {row.mean_change:+.3f} ({direction} in {row.improved} of {row.trials})"
        for row in changes.reindex([s for s in order if s in changes.index]).itertuples()
    ]
    return f"Over each trial's last epoch, {metric} changed by (mean): " + ", ".join(parts) if parts else ""

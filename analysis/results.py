"""Trials of one stage as one table (one row per trial), from a Tune experiment or a CSV.

A trial's value for a metric is the last value it reported: its final epoch for per-epoch
metrics such as eval_accuracy, the single value for once-reported ones such as init_accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.names import (
    CONFIG_PREFIX,
    EPOCH,
    EPOCHS,
    ERROR,
    NOT_METRICS,
    RAY_BOOKKEEPING,
    REPLICATE,
    SEED,
    STAGES,
    STATUS,
    STRATEGY,
    TEACHER_LAYERS,
    TERMINATED,
    TRAINING_ITERATION,
    TRIAL_ID,
)

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

REDUCTIONS = ("last", "max", "min")
_NOT_FINISHED = {
    "RUNNING": "still running (or the sweep stopped before it finished)",
    "PENDING": "never started",
    "PAUSED": "paused, not finished",
}


class InputError(Exception):
    """Input that cannot be ranked; the CLI prints the message and exits with status 2."""


@dataclass(frozen=True)
class Results:
    """All trials of one stage.

    `trials` has one row per trial: identity, status, last reported metrics and `config/` keys.
    `history` has one row per report (empty when read from a per-trial CSV).
    """

    trials: pd.DataFrame
    history: pd.DataFrame
    source: str


def resolve_input(path: Path, stage: str | None) -> tuple[Path, str]:
    """Finds what to load and its stage, for a study folder, a stage folder or a CSV file.

    Without an explicit stage, a folder named like a stage is that stage; anything else is
    ranked as the replicate stage.
    """
    if stage is not None and stage not in STAGES:
        raise InputError(f"Unknown stage '{stage}'; use one of {', '.join(STAGES)}.")
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InputError(f"{path} is a file but not a per-trial CSV (*.csv).")
        return path, stage or REPLICATE
    chosen = stage or (path.name if path.name in STAGES else REPLICATE)
    if (path / chosen).is_dir():
        return path / chosen, chosen
    present = [name for name in STAGES if (path / name).is_dir()]
    if present:
        raise InputError(
            f"The study folder {path} has no {chosen}/ stage (it has: {', '.join(present)}); "
            f"pass --stage {present[0]}."
        )
    return path, chosen


def load_results(path: Path) -> Results:
    """Loads a per-trial CSV or a Ray Tune experiment folder."""
    if path.is_file():
        return load_trials_csv(path)
    return load_experiment(path)


def merge_results(parts: list[Results]) -> Results:
    """Trials of several runs of one stage as one table, e.g. a study and a later one that added
    seeds. A trial may appear only once; a (strategy, seed) pair run twice is averaged by the
    ranking, which says so."""
    if len(parts) == 1:
        return parts[0]
    trials = pd.concat([part.trials for part in parts], ignore_index=True)
    repeated = trials.loc[trials[TRIAL_ID].duplicated(), TRIAL_ID].tolist()
    if repeated:
        raise InputError(
            f"Trial(s) {', '.join(map(str, repeated[:3]))} appear in more than one input: pass each "
            "study or CSV once."
        )
    history = pd.concat([part.history for part in parts], ignore_index=True)
    return Results(_tidy(trials), history, " + ".join(part.source for part in parts))


def load_experiment(stage_dir: Path) -> Results:
    """Reads a Tune experiment folder through Ray's ExperimentAnalysis (no Ray cluster needed)."""
    from ray.tune import ExperimentAnalysis  # Ray takes a second to import; CSVs never need it.

    try:
        analysis = ExperimentAnalysis(str(stage_dir.resolve()))  # pyarrow reads relative paths as URIs
    except ValueError as error:
        raise InputError(
            f"{stage_dir} is not a Ray Tune experiment folder: it holds no experiment state "
            "(experiment_state-*.json). Pass a study folder holding search/ and replicate/, "
            "one of those stage folders, or a per-trial CSV."
        ) from error
    if not analysis.trials:
        raise InputError(f"The experiment in {stage_dir} holds no trials.")
    frames = analysis.trial_dataframes
    trials = pd.DataFrame([_trial_row(trial, frames[trial.trial_id]) for trial in analysis.trials])
    history = pd.concat(
        [_history(trial.trial_id, frames[trial.trial_id]) for trial in analysis.trials],
        ignore_index=True,
    )
    return Results(trials=_tidy(trials), history=history, source=str(stage_dir))


def _trial_row(trial: Trial, frame: pd.DataFrame) -> dict[str, object]:
    """One trial's identity, status, last reported value of each metric, and config."""
    last = frame.ffill().iloc[-1] if len(frame) else pd.Series(dtype=object)
    row: dict[str, object] = {key: value for key, value in last.items() if _is_reported_metric(str(key))}
    config = pd.json_normalize(trial.config, sep="/").iloc[0].to_dict() if trial.config else {}
    row.update({CONFIG_PREFIX + key: value for key, value in config.items()})
    row[TRIAL_ID] = trial.trial_id
    row[STATUS] = trial.status
    row[ERROR] = _error_line(trial) if trial.status == "ERROR" else ""
    row[STRATEGY] = config.get(STRATEGY, row.get(STRATEGY))
    row[SEED] = config.get(SEED, row.get(SEED))
    row[EPOCHS] = _epochs(frame)
    return row


def _is_reported_metric(column: str) -> bool:
    return column not in RAY_BOOKKEEPING and column != TRIAL_ID and not column.startswith(CONFIG_PREFIX)


def _error_line(trial: Trial) -> str:
    """The last line of a failed trial's traceback, e.g. 'RuntimeError: CUDA out of memory'."""
    text = trial.get_error() or ""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _epochs(frame: pd.DataFrame) -> float:
    """How far a trial got: its last epoch, else its number of reports."""
    for column in (EPOCH, TRAINING_ITERATION):
        if column in frame and frame[column].notna().any():
            return float(frame[column].max())
    return float("nan")


def _history(trial_id: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A trial's reports without Ray's bookkeeping, keeping training_iteration as a clock."""
    keep = [column for column in frame.columns if _is_reported_metric(column) or column == TRAINING_ITERATION]
    return frame[keep].assign(**{TRIAL_ID: trial_id})


def load_trials_csv(path: Path) -> Results:
    """Reads a per-trial CSV (as written by `write_trials_csv`, or merged from several).

    Required columns: strategy, seed and the metric. Optional: trial_id, status (Tune's
    TERMINATED / ERROR / RUNNING / PENDING / PAUSED; blank or absent means TERMINATED),
    error, epochs, teacher_layers, teacher_accuracy, init_accuracy, student_params, other
    metrics, and config/<key> hyperparameters (they tell search configurations apart).
    """
    text_columns = {column: str for column in (STRATEGY, TEACHER_LAYERS, TRIAL_ID, STATUS, ERROR)}
    try:
        trials = pd.read_csv(path, dtype=text_columns, keep_default_na=True)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not a readable per-trial CSV: {error}") from error
    missing = [column for column in (STRATEGY, SEED) if column not in trials]
    if missing:
        raise InputError(
            f"{path} lacks the column(s) {', '.join(missing)}; a per-trial CSV needs at least "
            f"'{STRATEGY}', '{SEED}' and the metric to rank by."
        )
    if trials.empty:
        raise InputError(f"{path} holds no trials.")
    if TRIAL_ID not in trials:
        trials[TRIAL_ID] = [f"row{index + 1}" for index in range(len(trials))]
    return Results(trials=_tidy(trials), history=pd.DataFrame(), source=str(path))


def _tidy(trials: pd.DataFrame) -> pd.DataFrame:
    """Fills optional columns and puts identity columns first, so every source looks alike."""
    trials = trials.copy()
    defaults = {STATUS: TERMINATED, ERROR: "", TEACHER_LAYERS: ""}
    for column, default in defaults.items():
        trials[column] = trials[column].fillna(default) if column in trials else default
    trials[TEACHER_LAYERS] = trials[TEACHER_LAYERS].astype(str)
    trials[STRATEGY] = trials[STRATEGY].astype(str)
    first = [TRIAL_ID, STRATEGY, SEED, STATUS, ERROR, EPOCHS, TEACHER_LAYERS]
    config = sorted(column for column in trials if column.startswith(CONFIG_PREFIX))
    metrics = sorted(column for column in trials if column not in first and column not in config)
    ordered = trials[[column for column in first if column in trials] + metrics + config]
    return ordered.sort_values([STRATEGY, SEED], kind="stable", ignore_index=True)


def write_trials_csv(results: Results, path: Path) -> None:
    """Saves the per-trial table, so that a study can be re-ranked or merged without Ray."""
    results.trials.to_csv(path, index=False)


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
    if status == "ERROR":
        return f"failed: {trial[ERROR]}" if trial[ERROR] else "failed"
    if status != TERMINATED:
        return _NOT_FINISHED.get(status, f"status {status}")
    if pd.isna(trial["value"]):
        return f"reported no {metric}"
    return ""

"""Trials of one stage as one table (one row per trial), from Tune experiments or per-trial CSVs.

This is the one reader of per-trial results. A trial's value for a metric is the last value it
reported: its final epoch for per-epoch metrics such as eval_accuracy, the single value for
once-reported ones such as init_accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.names import (
    CONFIG_PREFIX,
    DECLARED_TASK,
    EPOCHS,
    ERROR,
    RAY_BOOKKEEPING,
    STATUS,
    TASK,
    TRAINING_ITERATION,
    TRIAL_ID,
)
from trainables.vocabulary import (
    EPOCH,
    SEED,
    STRATEGY,
    TEACHER_HASH,
    TEACHER_LAYERS,
    TRIAL_STAGES,
    TRIALS_CSV,
    Stage,
    TrialStatus,
)

if TYPE_CHECKING:
    from ray.tune import ExperimentAnalysis
    from ray.tune.experiment import Trial

# What `error_line` says when a failed trial left no error text.
NO_ERROR_TEXT = "failed"
_ERROR_CHARS = 300


class InputError(Exception):
    """Input that cannot be ranked; the CLI prints the message and exits with status 2."""


@dataclass(frozen=True)
class Results:
    """All trials of one stage.

    `trials` has one row per trial: identity, status, last reported metrics and `config/` keys.
    `history` has one row per report (empty when read from a per-trial CSV). `notes` are what
    the ranking must say about the inputs, e.g. a teacher that could not be checked.
    """

    trials: pd.DataFrame
    history: pd.DataFrame
    source: str
    notes: tuple[str, ...] = ()


def resolve_input(path: Path, stage: str | None) -> tuple[Path, str]:
    """Finds what to load and its stage, for a study folder, a stage folder or a CSV file.

    Without an explicit stage, a folder named like a stage is that stage; anything else is
    ranked as the replicate stage.
    """
    if stage is not None and stage not in TRIAL_STAGES:
        raise InputError(f"Unknown stage '{stage}'; use one of {', '.join(TRIAL_STAGES)}.")
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise InputError(f"{path} is a file but not a per-trial CSV (*.csv).")
        return path, stage or Stage.REPLICATE
    chosen = stage or (path.name if path.name in TRIAL_STAGES else Stage.REPLICATE)
    if (path / chosen).is_dir():
        return path / chosen, chosen
    present = [name for name in TRIAL_STAGES if (path / name).is_dir()]
    if present:
        raise InputError(
            f"The study folder {path} has no {chosen}/ stage (it has: {', '.join(present)}); "
            f"pass --stage {present[0]}."
        )
    return path, chosen


def load_results(path: Path) -> Results:
    """Loads a per-trial CSV, a Ray Tune experiment folder, or a folder of either.

    A stage may be several experiments (the search runs one per strategy, in search/<strategy>/),
    and a study kept on remote storage keeps only their trials.csv files locally; each is loaded
    and all are merged. An experiment folder is preferred to its trials.csv: it holds the
    per-epoch history too.
    """
    if path.is_file():
        return load_trials_csv(path)
    if not path.is_dir():
        raise InputError(f"{path} does not exist.")
    if _holds_experiment(path):
        return load_experiment(path)
    if (path / TRIALS_CSV).is_file():
        return load_trials_csv(path / TRIALS_CSV)
    parts = sorted(sub for sub in path.iterdir() if sub.is_dir() and _holds_trials(sub))
    if not parts:
        raise InputError(
            f"{path} is not a Ray Tune experiment folder: it holds no experiment state "
            f"(experiment_state-*.json), no {TRIALS_CSV}, and no subfolder with either. Pass a study "
            "folder holding search/ and replicate/, one of those stage folders, or a per-trial CSV."
        )
    return merge_results([load_results(part) for part in parts])


def _holds_experiment(folder: Path) -> bool:
    return any(folder.glob("experiment_state-*.json"))


def _holds_trials(folder: Path) -> bool:
    return _holds_experiment(folder) or (folder / TRIALS_CSV).is_file()


def merge_results(parts: list[Results]) -> Results:
    """Trials of several runs of one stage as one table, e.g. a study and a later one that added
    seeds. A trial may appear only once; a (strategy, seed) pair run twice is averaged by the
    ranking, which says so. All trials must share one teacher (see `teacher_notes`), and each
    strategy one set of teacher layers (see `one_layer_set_each`)."""
    notes = tuple(note for part in parts for note in part.notes) + tuple(teacher_notes(parts))
    if len(parts) == 1:
        return Results(parts[0].trials, parts[0].history, parts[0].source, notes)
    one_layer_set_each(parts)
    trials = pd.concat([part.trials for part in parts], ignore_index=True)
    repeated = trials.loc[trials[TRIAL_ID].duplicated(), TRIAL_ID].tolist()
    if repeated:
        raise InputError(
            f"Trial(s) {', '.join(map(str, repeated[:3]))} appear in more than one input: pass each "
            "study or CSV once."
        )
    history = pd.concat([part.history for part in parts], ignore_index=True)
    return Results(_tidy(trials), history, " + ".join(part.source for part in parts), notes)


def only_strategies(results: Results, strategies: Sequence[str]) -> Results:
    """The trials of the named strategies only, e.g. to rank the ones that ran more seeds on all
    their seeds. Raises InputError for a name no trial has, so that a typo cannot shrink the
    ranking in silence."""
    present = set(results.trials[STRATEGY])
    unknown = [name for name in strategies if name not in present]
    if unknown:
        raise InputError(
            f"No trial has the strateg{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
            f"the trials have {', '.join(sorted(present))}."
        )
    trials = results.trials[results.trials[STRATEGY].isin(strategies)].reset_index(drop=True)
    history = results.history
    if TRIAL_ID in history:
        history = history[history[TRIAL_ID].isin(trials[TRIAL_ID])].reset_index(drop=True)
    return Results(trials, history, results.source, results.notes)


def task_names(trials: pd.DataFrame) -> list[str]:
    """The names of the tasks the trials ran (a declared task's by its own name), in order of first
    appearance; empty where the trials do not say."""
    names = pd.Series(pd.NA, index=trials.index, dtype=object)
    for column in (DECLARED_TASK, TASK):
        if column in trials:
            names = names.fillna(trials[column])
    return [str(name) for name in names.dropna().unique()]


def teacher_notes(parts: list[Results]) -> list[str]:
    """Students of different teachers are not comparable: raises InputError when the trials name
    more than one teacher hash, within one input or across inputs. Inputs without hashes (older
    CSVs) merge, with a note saying that their teacher cannot be checked."""
    teachers = {part.source: _teacher(part) for part in parts}
    known = {source: teacher for source, teacher in teachers.items() if teacher}
    if len(set(known.values())) > 1:
        listed = "; ".join(f"{source} has {teacher}" for source, teacher in known.items())
        raise InputError(
            f"The inputs were distilled from different teachers ({TEACHER_HASH}: {listed}); "
            "rank each teacher's students separately."
        )
    unknown = [source for source, teacher in teachers.items() if not teacher]
    if not known or not unknown:
        return []
    return [
        f"The teacher of {', '.join(unknown)} cannot be checked: its trials report no {TEACHER_HASH}, "
        f"while those of {', '.join(known)} name the teacher {next(iter(known.values()))}."
    ]


def one_layer_set_each(parts: list[Results]) -> None:
    """A strategy name stands for one student: raises InputError when its trials copied different
    teacher layers, e.g. parts of a study whose teacher stages chose `auto:drop`'s layers apart.
    Trials that report no layers (scratch, failed before reporting) are not compared."""
    frames = [part.trials.assign(source=part.source) for part in parts if TEACHER_LAYERS in part.trials]
    if not frames:
        return
    reported = pd.concat(frames, ignore_index=True)
    reported = reported[reported[TEACHER_LAYERS].fillna("").astype(str) != ""]
    for strategy, rows in reported.groupby(STRATEGY):
        if rows[TEACHER_LAYERS].nunique() > 1:
            sources = rows.groupby(TEACHER_LAYERS, sort=False)["source"].agg(lambda s: ", ".join(s.unique()))
            listed = "; ".join(f"[{layers}] in {where}" for layers, where in sources.items())
            raise InputError(
                f"The trials of {strategy} copied different teacher layers ({listed}); a strategy must "
                "name one student: rank the inputs separately."
            )


def _teacher(part: Results) -> str:
    """The one teacher hash an input's trials report ("" if none reports one)."""
    if TEACHER_HASH not in part.trials:
        return ""
    counts = part.trials[TEACHER_HASH].dropna().astype(str).value_counts()
    if len(counts) > 1:
        listed = ", ".join(f"{teacher} ({count} trials)" for teacher, count in counts.items())
        raise InputError(
            f"The trials of {part.source} were distilled from different teachers ({TEACHER_HASH}: "
            f"{listed}); rank each teacher's students separately."
        )
    return str(counts.index[0]) if len(counts) else ""


def load_experiment(stage_dir: Path) -> Results:
    """Reads a Tune experiment folder through Ray's ExperimentAnalysis (no Ray cluster needed)."""
    analysis = experiment(stage_dir)
    if not analysis.trials:
        raise InputError(f"The experiment in {stage_dir} holds no trials.")
    frames = analysis.trial_dataframes
    trials = pd.DataFrame([_trial_row(trial, frames[trial.trial_id]) for trial in analysis.trials])
    history = pd.concat(
        [_history(trial.trial_id, frames[trial.trial_id]) for trial in analysis.trials],
        ignore_index=True,
    )
    return Results(trials=_tidy(trials), history=history, source=str(stage_dir))


def experiment(stage_dir: Path | str) -> ExperimentAnalysis:
    """A Tune experiment with its trials in the order they were created.

    Ray saves them in no fixed order. Creation order is what breaks ties: a search's first trial (the
    fixed setting) wins a tie with later ones, in the study's choice and in the ranking alike."""
    from ray.tune import ExperimentAnalysis  # Ray takes a second to import; CSVs never need it.

    try:
        analysis = ExperimentAnalysis(str(Path(stage_dir).resolve()))  # pyarrow: relative paths are URIs
    except ValueError as error:
        raise InputError(f"{stage_dir} holds no readable Ray Tune experiment: {error}") from error
    analysis.trials.sort(key=creation_number)
    return analysis


def creation_number(trial: Trial) -> int:
    """The trial's number in its experiment, from its tag ("3_lr=0.0001,..." is the third)."""
    number = str(trial.experiment_tag).split("_", 1)[0]
    return int(number) if number.isdigit() else 0


def _trial_row(trial: Trial, frame: pd.DataFrame) -> dict[str, object]:
    """One trial's identity, status, last reported value of each metric, and config."""
    last = frame.ffill().iloc[-1] if len(frame) else pd.Series(dtype=object)
    row: dict[str, object] = {key: value for key, value in last.items() if _is_reported_metric(str(key))}
    config = pd.json_normalize(trial.config, sep="/").iloc[0].to_dict() if trial.config else {}
    row.update({CONFIG_PREFIX + key: value for key, value in config.items()})
    row[TRIAL_ID] = trial.trial_id
    row[STATUS] = trial.status
    row[ERROR] = error_line(trial) if trial.status == TrialStatus.ERROR else ""
    row[STRATEGY] = config.get(STRATEGY, row.get(STRATEGY))
    row[SEED] = config.get(SEED, row.get(SEED))
    row[EPOCHS] = _epochs(frame)
    return row


def _is_reported_metric(column: str) -> bool:
    return column not in RAY_BOOKKEEPING and column != TRIAL_ID and not column.startswith(CONFIG_PREFIX)


def error_line(trial: Trial) -> str:
    """The line of a failed trial's traceback that says what went wrong, e.g.
    'NonFiniteLossError: the training loss became nan at step 3'.

    Ray wraps the trial's exception in its own lines, and a message may run over several lines,
    so the last line that names an error before its first colon wins; else the last line.
    """
    lines = [line.strip() for line in str(trial.get_error() or "").splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0]]
    return (named or lines or [NO_ERROR_TEXT])[-1][:_ERROR_CHARS]


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

    Required columns: strategy, seed (a number) and the metric. Optional: trial_id, status
    (Tune's TERMINATED / ERROR / RUNNING / PENDING / PAUSED; blank or absent means TERMINATED),
    error, epochs, teacher_layers, teacher_hash, teacher_<metric>, init_<metric>, student_params,
    other metrics, and config/<key> hyperparameters (they tell search configurations apart).
    """
    text = (STRATEGY, TEACHER_LAYERS, TEACHER_HASH, TRIAL_ID, STATUS, ERROR)
    try:
        trials = pd.read_csv(path, dtype=dict.fromkeys(text, str), keep_default_na=True)
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
    blank = trials[STRATEGY].fillna("").str.strip() == ""
    if blank.any():
        lines = ", ".join(str(index + 2) for index in trials.index[blank][:5])
        raise InputError(
            f"{path} has no strategy on line(s) {lines}{' and more' if blank.sum() > 5 else ''}; every "
            "trial needs the strategy it ranks under."
        )
    trials[SEED] = _seeds(trials[SEED], path)
    if TRIAL_ID not in trials:
        trials[TRIAL_ID] = [f"row{index + 1}" for index in range(len(trials))]
    return Results(trials=_tidy(trials), history=_read_history(path, trials), source=str(path))


def history_path(trials_csv: Path) -> Path:
    """Where a per-trial CSV's per-epoch reports are kept: `<name>_history.csv` beside it."""
    return trials_csv.with_name(f"{trials_csv.stem}_history.csv")


def _read_history(trials_csv: Path, trials: pd.DataFrame) -> pd.DataFrame:
    """The per-epoch reports saved with a per-trial CSV (empty when there are none), so that
    learning curves re-plot from committed files as they do from a Tune experiment."""
    path = history_path(Path(trials_csv))
    if not path.is_file():
        return pd.DataFrame()
    try:
        history = pd.read_csv(path, dtype={TRIAL_ID: str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is not a readable per-epoch history: {error}") from error
    if TRIAL_ID not in history:
        raise InputError(f"{path} lacks the column {TRIAL_ID}, which ties each report to its trial.")
    unknown = sorted(set(history[TRIAL_ID]) - set(trials[TRIAL_ID]))
    if unknown:
        raise InputError(
            f"{path} reports trials that {trials_csv} does not hold ({', '.join(unknown[:3])}); "
            "keep each history with its own per-trial CSV."
        )
    return history


def _seeds(column: pd.Series, path: Path) -> pd.Series:
    """Seeds as numbers (integers where they are whole): a seed is the block strategies are
    paired on, so a misspelt one must not become a seed of its own."""
    seeds = pd.to_numeric(column, errors="coerce")
    bad = ~np.isfinite(seeds.to_numpy(dtype=float))
    if bad.any():
        lines = [f"line {index + 2} ({column[index]!r})" for index in column.index[bad][:5]]
        raise InputError(
            f"{path} has a missing or non-numeric seed on {', '.join(lines)}"
            f"{' and more' if bad.sum() > 5 else ''}; every trial needs a numeric seed."
        )
    return seeds.astype("int64") if (seeds == seeds.round()).all() else seeds


def _tidy(trials: pd.DataFrame) -> pd.DataFrame:
    """Fills optional columns and puts identity columns first, so every source looks alike."""
    trials = trials.copy()
    defaults = {STATUS: str(TrialStatus.TERMINATED), ERROR: "", TEACHER_LAYERS: ""}
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
    """Saves the per-trial table, and the per-epoch reports beside it (`history_path`), so that a
    study can be re-ranked, merged and its learning curves drawn without Ray."""
    results.trials.to_csv(path, index=False)
    if results.history.empty:
        history_path(Path(path)).unlink(missing_ok=True)  # an older run's would be read as this one's
    else:
        results.history.to_csv(history_path(Path(path)), index=False)

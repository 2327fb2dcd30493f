"""Writing a ranked study out: the ranking CSV first, then plots, report and per-trial CSV.

The ranking is what a finished study is for, so it is always written; a plot, report or
per-trial CSV that cannot be written costs a one-line logged warning, not the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis.curves import last_epoch_sentence
from analysis.plots import plot_history, plot_metric
from analysis.ranked import RankedSample, RankedStage
from analysis.report import Section, verdict_sentences, write_report
from analysis.results import InputError, history_path, write_trials_csv
from trainables.metrics import task_metric
from trainables.vocabulary import STRATEGY, TEACHER, scored

log = logging.getLogger(__name__)

TITLE = "Ranking of student-layer initializations"


def write_outputs(
    study: RankedStage,
    csv_path: Path,
    plot_path: Path | None = None,
    report_path: Path | None = None,
    trials_path: Path | None = None,
) -> list[Path]:
    """Writes the ranking CSV and whichever of plots, report and per-trial CSV are asked for.

    With several rankings, each plot name gets the aggregation as a suffix; the per-epoch plot
    adds "_epochs". Returns the files written. Raises InputError when the ranking CSV cannot be
    written.
    """
    write_ranking(study.table, csv_path)
    written = [csv_path]
    sections = []
    for ranked in study.ranked:
        plots = _plots(study, ranked, plot_path) if plot_path else []
        written += plots
        order = ranked.ranking.table[STRATEGY].tolist()
        curves = last_epoch_sentence(
            study.results.history, ranked.sample.rows, study.metric, study.mode, order
        )
        verdict = verdict_sentences(ranked)
        sections.append(Section(study.heading(ranked), ranked.ranking, verdict, plots, curves))
    if report_path and _attempt(
        report_path, lambda: write_report(report_path, TITLE, _facts(study), sections, study.notes)
    ):
        written.append(report_path)
    if trials_path and _attempt(trials_path, lambda: write_trials_csv(study.results, trials_path)):
        written += [path for path in (trials_path, history_path(trials_path)) if path.is_file()]
    return written


def write_ranking(table: pd.DataFrame, path: Path) -> None:
    """Writes the ranking CSV, creating its folder; InputError for a path that cannot be one."""
    if path.is_dir():
        raise InputError(
            f"The ranking CSV {path} is an existing folder; name the file to write, "
            f"e.g. {path / 'ranking.csv'}."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
    except OSError as error:
        raise InputError(f"Cannot write the ranking CSV {path}: {error}. Choose another --out.") from error


def _attempt(path: Path, write: Callable[[], object]) -> bool:
    """Runs `write` into `path`'s folder; False, after a logged warning, when it raises, and
    False when it returns False (nothing to draw)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return write() is not False
    except Exception as error:  # any failure of an extra output must leave the ranking standing
        first_line = (str(error).splitlines() or [""])[0]
        log.warning(f"skipped {path}: {type(error).__name__}: {first_line}")
        return False


def _plots(study: RankedStage, ranked: RankedSample, plot_path: Path) -> list[Path]:
    suffix = f"_{ranked.sample.aggregation}" if len(study.ranked) > 1 else ""
    metric_plot = plot_path.with_name(f"{plot_path.stem}{suffix}{plot_path.suffix}")
    epochs_plot = plot_path.with_name(f"{plot_path.stem}{suffix}_epochs{plot_path.suffix}")
    order = ranked.ranking.table[STRATEGY].tolist()
    drawn = {
        metric_plot: lambda: plot_metric(ranked.ranking, study.metric, metric_plot),
        epochs_plot: lambda: plot_history(
            study.results.history, ranked.sample.rows, order, epochs_plot, study.metric
        ),
    }
    return [path for path, draw in drawn.items() if _attempt(path, draw)]


def _facts(study: RankedStage) -> list[str]:
    value = "last reported value" if study.reduce == "last" else f"{study.reduce} over epochs"
    better = "higher" if study.mode == "max" else "lower"
    facts = [
        f"Source: `{study.results.source}` ({len(study.results.trials)} trials)",
        f"Stage: {study.stage}",
        f"Metric: `{study.metric}`, each trial's {value}; {better} is better",
    ]
    measured = task_metric(study.metric)
    column = scored(TEACHER, measured) if measured else ""
    if column in study.results.trials:
        teacher = study.results.trials[column].dropna().unique()
        facts.append(f"Teacher {measured} on the validation set: {', '.join(f'{t:.4g}' for t in teacher)}")
    if study.budget is not None:
        facts.append(
            "Search-stage rankings compare full-budget trials only "
            f"(trials that ran all {study.budget:g} epochs)"
        )
    if study.results.history.empty:
        facts.append("No per-epoch history (a per-trial CSV without its _history.csv), so no per-epoch plot")
    return facts

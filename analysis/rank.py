"""Ranks student-layer initialization strategies of one study stage.

    python -m analysis.rank <study folder | stage folder | trials.csv> [more ...] --out ranking.csv
        [--metric eval_accuracy] [--stage replicate|search] [--reduce last|max|min]
        [--mode max|min] [--plot ranking.png] [--report report.md] [--trials trials.csv]

A trial's value is the last value it reported for the metric: its final epoch for per-epoch
metrics, the single report for init_accuracy. `--reduce max` takes its best epoch instead.
Failed, unfinished and metric-less trials are excluded and counted with their reason.
The replicate stage (default) is ranked over seeds; the search stage twice, by each
strategy's best configuration and over all its configurations (the `aggregation` column).
Several inputs are ranked as one stage, e.g. a study and a second one that added seeds.
Bad input exits with status 2 and a one-paragraph message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import (
    Sample,
    exclusions,
    samples,
    strategy_facts,
    trial_notes,
)
from analysis.names import EVAL_ACCURACY, STAGES, STRATEGY, TEACHER_ACCURACY
from analysis.plots import plot_history, plot_metric
from analysis.report import Section, write_report
from analysis.results import (
    REDUCTIONS,
    InputError,
    Results,
    load_results,
    merge_results,
    resolve_input,
    trial_values,
    write_trials_csv,
)
from analysis.stats import Ranking, rank_strategies

# ranking.csv, one row per strategy (per aggregation for the search stage), best first.
COLUMNS = [
    "rank",  # 1 = best mean; equal means share a rank; empty when nothing was usable
    "strategy",
    "teacher_layers",  # 1-based teacher layers copied into the student; empty for scratch
    "n",  # observations ranked (seeds; configuration/seed pairs for mean_over_configs)
    "n_excluded",  # failed, unfinished or metric-less trials left out
    "mean",
    "std",  # ddof 1
    "median",
    "ci_low",  # 95% percentile-bootstrap CI of the mean
    "ci_high",
    "mean_rank",  # mean within-seed rank over the seeds every strategy has (1 = best)
    "p_vs_best",  # Holm-corrected two-sided p against the best; empty for the best itself
    "p_uncorrected",
    "tied_with_best",  # p_vs_best > 0.05 (True for the best); empty where untestable
    "test",  # wilcoxon (paired by seed) or mannwhitneyu (seeds differ)
    "retention",  # mean / teacher_accuracy, for eval_accuracy (empty for other metrics)
    "teacher_accuracy",  # the teacher's accuracy on the validation set
    "init_accuracy",  # mean accuracy of the student before training
    "student_params",
    "aggregation",  # mean_over_seeds, or best_config / mean_over_configs (search stage)
    "config",  # the configuration ranked, for best_config
    "metric",
    "excluded",  # "seed 2: failed: RuntimeError: ..."; one entry per excluded trial
]


@dataclass(frozen=True)
class Ranked:
    """One ranking with the sample it was computed from; `ranking.table` has all COLUMNS."""

    sample: Sample
    ranking: Ranking


@dataclass(frozen=True)
class Study:
    """Everything ranked from one stage, ready to write out."""

    results: Results
    stage: str
    metric: str
    mode: str
    reduce: str
    ranked: list[Ranked]
    notes: list[str]

    @property
    def table(self) -> pd.DataFrame:
        """All rankings as one table: one row per strategy (and aggregation), best first."""
        return pd.concat([r.ranking.table for r in self.ranked], ignore_index=True)


def default_mode(metric: str) -> str:
    """Losses are better low, everything else (accuracies) high."""
    return "min" if "loss" in metric else "max"


def rank_results(
    results: Results,
    stage: str,
    metric: str = EVAL_ACCURACY,
    mode: str | None = None,
    reduce: str = "last",
) -> Study:
    """Ranks loaded trials; raises InputError when nothing can be ranked."""
    mode = mode or default_mode(metric)
    if mode not in ("max", "min"):
        raise InputError(f"Unknown mode '{mode}'; use max (higher is better) or min.")
    values = trial_values(results, metric, reduce)
    notes = trial_notes(values)
    if (values["excluded"] != "").all():
        raise InputError(f"No trial can be ranked by '{metric}'. {' '.join(notes)}")
    strategies = sorted(values[STRATEGY].unique())
    ranked = []
    for sample in samples(values, stage, mode):
        ranking = rank_strategies(sample.rows, mode, strategies, sample.block_name)
        table = _full_table(ranking, sample, values, metric)
        ranked.append(Ranked(sample, replace(ranking, table=table)))
    return Study(results, stage, metric, mode, reduce, ranked, notes)


def _full_table(ranking: Ranking, sample: Sample, values: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The statistics joined with what each strategy is and what was excluded."""
    table = ranking.table.join(strategy_facts(sample.rows, values), on=STRATEGY)
    table = table.join(exclusions(values), on=STRATEGY)
    # The trials score the teacher on the validation set only, so only eval_accuracy compares.
    table["retention"] = table["mean"] / table[TEACHER_ACCURACY] if metric == EVAL_ACCURACY else np.nan
    table["aggregation"] = sample.aggregation
    table["config"] = [sample.configs.get(strategy, "") for strategy in table[STRATEGY]]
    table["metric"] = metric
    return table[COLUMNS]


def write_outputs(
    study: Study,
    csv_path: Path,
    plot_path: Path | None = None,
    report_path: Path | None = None,
    trials_path: Path | None = None,
) -> list[Path]:
    """Writes the ranking CSV and whichever of plots, report and per-trial CSV are asked for.

    With several rankings (search stage), each plot name gets the aggregation as a suffix;
    the per-epoch plot adds "_epochs". Returns the files written.
    """
    for path in (csv_path, plot_path, report_path, trials_path):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
    study.table.to_csv(csv_path, index=False)
    written = [csv_path]
    sections = []
    for ranked in study.ranked:
        plots = _plots(study, ranked, plot_path) if plot_path else []
        written += plots
        sections.append(Section(_heading(study, ranked), ranked.ranking, plots))
    if report_path:
        write_report(
            report_path, "Ranking of student-layer initializations", _facts(study), sections, study.notes
        )
        written.append(report_path)
    if trials_path:
        write_trials_csv(study.results, trials_path)
        written.append(trials_path)
    return written


def _plots(study: Study, ranked: Ranked, plot_path: Path) -> list[Path]:
    suffix = f"_{ranked.sample.aggregation}" if len(study.ranked) > 1 else ""
    metric_plot = plot_path.with_name(f"{plot_path.stem}{suffix}{plot_path.suffix}")
    plot_metric(ranked.ranking, study.metric, metric_plot)
    epochs_plot = plot_path.with_name(f"{plot_path.stem}{suffix}_epochs{plot_path.suffix}")
    order = ranked.ranking.table[STRATEGY].tolist()
    if plot_history(study.results.history, ranked.sample.rows, order, epochs_plot):
        return [metric_plot, epochs_plot]
    return [metric_plot]


def _heading(study: Study, ranked: Ranked) -> str:
    return f"{study.stage} stage, {ranked.sample.aggregation.replace('_', ' ')}"


def _facts(study: Study) -> list[str]:
    value = "last reported value" if study.reduce == "last" else f"{study.reduce} over epochs"
    better = "higher" if study.mode == "max" else "lower"
    facts = [
        f"Source: `{study.results.source}` ({len(study.results.trials)} trials)",
        f"Stage: {study.stage}",
        f"Metric: `{study.metric}`, each trial's {value}; {better} is better",
    ]
    teacher = study.results.trials.get(TEACHER_ACCURACY, pd.Series(dtype=float)).dropna().unique()
    if len(teacher):
        facts.append(f"Teacher accuracy on the validation set: {', '.join(f'{t:.4g}' for t in teacher)}")
    if study.results.history.empty:
        facts.append("No per-epoch history (per-trial CSV input), so no per-epoch plot")
    return facts


def rank_study(
    stage_dir: Path | str,
    out_dir: Path | str,
    metric: str = EVAL_ACCURACY,
    stage: str | None = None,
    mode: str | None = None,
    reduce: str = "last",
) -> pd.DataFrame:
    """Ranks a study or stage folder (or per-trial CSV) and writes, into `out_dir`:
    ranking.csv, trials.csv, report.md, ranking.png and ranking_epochs.png (for the search
    stage, one pair of plots per aggregation, e.g. ranking_best_config.png).

    `stage` defaults to the folder's name if it is a stage, else replicate; `mode` to min for
    losses, else max. Returns the ranking table; raises InputError for input that cannot be
    ranked (its message says why).
    """
    study = _load_and_rank([Path(stage_dir)], metric, stage, mode, reduce)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(study, out / "ranking.csv", out / "ranking.png", out / "report.md", out / "trials.csv")
    return study.table


def _load_and_rank(paths: list[Path], metric: str, stage: str | None, mode: str | None, reduce: str) -> Study:
    inputs = [resolve_input(path, stage) for path in paths]
    stages = {chosen for _, chosen in inputs}
    if len(stages) > 1:
        raise InputError(f"The inputs hold different stages ({', '.join(sorted(stages))}); pass --stage.")
    results = merge_results([load_results(source) for source, _ in inputs])
    return rank_results(results, stages.pop(), metric, mode, reduce)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.rank",
        description="Rank student-layer initialization strategies of a study stage.",
    )
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="path",
        help="study folder, stage folder, or per-trial CSV; several are ranked together (e.g. more seeds)",
    )
    parser.add_argument("--metric", default=EVAL_ACCURACY, help="metric to rank by")
    parser.add_argument("--stage", choices=STAGES, help="stage of a study folder (default: replicate)")
    parser.add_argument(
        "--reduce", choices=REDUCTIONS, default="last", help="a trial's value over its epochs"
    )
    parser.add_argument("--mode", choices=("max", "min"), help="better direction (default: min for losses)")
    parser.add_argument("--out", type=Path, required=True, help="ranking CSV to write")
    parser.add_argument("--plot", type=Path, help="PNG of the metric per strategy")
    parser.add_argument("--report", type=Path, help="Markdown report to write")
    parser.add_argument("--trials", type=Path, help="per-trial CSV to write, for re-ranking")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 for input that cannot be ranked)."""
    args = _parser().parse_args(argv)
    try:
        study = _load_and_rank(args.paths, args.metric, args.stage, args.mode, args.reduce)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_outputs(study, args.out, args.plot, args.report, args.trials)
    _print_summary(study, written)
    return 0


def _print_summary(study: Study, written: list[Path]) -> None:
    shown = ["rank", "strategy", "n", "mean", "ci_low", "ci_high", "p_vs_best", "tied_with_best"]
    for ranked in study.ranked:
        print(f"\n{_heading(study, ranked)} ({study.metric}):")
        print(ranked.ranking.table[shown].to_string(index=False, float_format="%.4g"))
        for note in ranked.ranking.notes:
            print(f"  - {note}")
    for note in study.notes:
        print(f"- {note}")
    print("wrote: " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    raise SystemExit(main())

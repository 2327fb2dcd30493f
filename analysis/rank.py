"""Ranks student-layer initialization strategies of one study stage.

    python -m analysis.rank <study folder | stage folder | trials.csv> [more ...] --out ranking.csv
        [--metric eval_accuracy] [--stage replicate|search] [--reduce last|max|min]
        [--mode max|min] [--strategies bottom top ...] [--plot ranking.png] [--report report.md]
        [--trials trials.csv]

A trial's value is the last value it reported for the metric: its final epoch for per-epoch
metrics, the single report for init_accuracy. `--reduce max` takes its best epoch instead.
Failed, unfinished, metric-less and non-finite trials are excluded and counted with their
reason. The replicate stage (default) is ranked over seeds, once per setting when it ran both
the tuned and the fixed one; the search stage twice, by each strategy's best configuration and
over all its configurations (the `aggregation` column), on the trials that ran the full budget.
Several inputs are ranked as one stage, e.g. a study and a second one that added seeds;
`--strategies` ranks only the named ones, e.g. those that ran the added seeds.
Bad input exits with status 2 and a one-paragraph message.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.aggregate import Sample, exclusions, samples, strategy_facts, trial_notes
from analysis.names import BEST_CONFIG, SEARCH, STAGES, TRIALS_CSV, TUNED_SETTING
from analysis.outputs import write_outputs
from analysis.report import console_table, power_sentence, significance_sentence
from analysis.results import (
    InputError,
    Results,
    history_path,
    load_results,
    merge_results,
    only_strategies,
    resolve_input,
)
from analysis.stats import Ranking, rank_strategies
from analysis.values import REDUCTIONS, full_budget, trial_values
from trainables.metrics import EVAL_ACCURACY, direction, task_metric
from trainables.vocabulary import EVAL, SELECTION, STRATEGY, scored

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
]


@dataclass(frozen=True)
class Ranked:
    """One ranking with the sample it was computed from; `ranking.table` has all COLUMNS."""

    sample: Sample
    ranking: Ranking


@dataclass(frozen=True)
class Study:
    """Everything ranked from one stage, ready to write out. `budget` is the epochs a search
    trial had to run to be ranked (None outside the search stage)."""

    results: Results
    stage: str
    metric: str
    mode: str
    reduce: str
    ranked: list[Ranked]
    notes: list[str]
    budget: float | None = None

    @property
    def table(self) -> pd.DataFrame:
        """All rankings as one table: one row per strategy (and aggregation), best first."""
        return pd.concat([r.ranking.table for r in self.ranked], ignore_index=True)

    def heading(self, ranked: Ranked) -> str:
        """E.g. "replicate stage, tuned setting"."""
        return f"{self.stage} stage, {ranked.sample.aggregation.replace('_', ' ')}"


def rank_results(
    results: Results,
    stage: str,
    metric: str = EVAL_ACCURACY,
    mode: str | None = None,
    reduce: str = "last",
) -> Study:
    """Ranks loaded trials; raises InputError when nothing can be ranked."""
    mode = mode or direction(metric)
    if mode not in ("max", "min"):
        raise InputError(f"Unknown mode '{mode}'; use max (higher is better) or min.")
    values, budget = trial_values(results, metric, reduce), None
    if stage == SEARCH:
        values, budget = full_budget(values)
    notes = [*results.notes, *trial_notes(values)]
    if (values["excluded"] != "").all():
        raise InputError(f"No trial can be ranked by '{metric}'. {' '.join(notes)}")
    strategies = sorted(values[STRATEGY].unique())
    ranked = []
    for sample in samples(values, stage, mode):
        ranking = rank_strategies(sample.rows, mode, strategies, sample.block_name)
        table = _full_table(ranking, sample, values, metric)
        ranked.append(Ranked(sample, replace(ranking, table=table)))
    notes += selection_notes(results, ranked)
    return Study(results, stage, metric, mode, reduce, ranked, notes, budget)


def selection_notes(results: Results, ranked: list[Ranked]) -> list[str]:
    """Whether the tuned settings were chosen on rows apart from the ones ranked (selection_*)."""
    if not any(r.sample.aggregation == TUNED_SETTING for r in ranked):
        return []
    if any(str(column).startswith(f"{SELECTION}_") for column in results.trials):
        return [
            "The tuned settings were selected on rows held apart for selection (selection_* metrics); "
            "the rankings compare rows on which no choice was made."
        ]
    return [
        "The tuned settings were selected on the same validation rows this ranking compares (the study "
        "had no selection rows): the tuned ranking reuses its selection rows, which favours whichever "
        "strategy the search favoured."
    ]


def _full_table(ranking: Ranking, sample: Sample, values: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The statistics joined with what each strategy is and what was excluded."""
    strategies = sorted(values[STRATEGY].unique())
    table = ranking.table.join(strategy_facts(sample.rows, values, metric), on=STRATEGY)
    table = table.join(exclusions(sample.trials, strategies), on=STRATEGY)
    # The trials score the teacher on the primary validation set only, so only eval_<metric> compares.
    measured = task_metric(metric)
    primary = measured is not None and metric == scored(EVAL, measured)
    table["retention"] = table["mean"] / table["teacher_score"] if primary else np.nan
    table["aggregation"] = sample.aggregation
    table["setting"] = sample.setting
    table["config"] = [sample.configs.get(strategy, "") for strategy in table[STRATEGY]]
    table["metric"] = metric
    return table[COLUMNS]


def top_strategy(study: Study) -> str | None:
    """The rank-1 strategy: of the tuned-setting ranking when the replicate stage ran two
    settings, of the best-configuration ranking for the search stage, else of the one ranking
    (the first listed where several share rank 1); None when nothing was ranked."""
    preferred = [r for r in study.ranked if r.sample.aggregation in (TUNED_SETTING, BEST_CONFIG)]
    chosen = (preferred or study.ranked)[:1]
    return chosen[0].ranking.first if chosen else None


def rank_into(
    stage_dir: Path | str, out_dir: Path | str, metric: str = EVAL_ACCURACY, stage: str | None = None
) -> Study:
    """Like `rank_study`, but returns the Study, for a caller that prints or picks from it."""
    return _rank_into(Path(stage_dir), Path(out_dir), metric, stage, None, "last")


def rank_study(
    stage_dir: Path | str,
    out_dir: Path | str,
    metric: str = EVAL_ACCURACY,
    stage: str | None = None,
    mode: str | None = None,
    reduce: str = "last",
) -> pd.DataFrame:
    """Ranks a study or stage folder (or per-trial CSV) and writes, into `out_dir`:
    ranking.csv, trials.csv, report.md, ranking.png and ranking_epochs.png (with several
    rankings, one pair of plots per aggregation, e.g. ranking_best_config.png).

    `stage` defaults to the folder's name if it is a stage, else replicate; `mode` to min for
    losses, else max. Returns the ranking table; raises InputError for input that cannot be
    ranked (its message says why).
    """
    return _rank_into(Path(stage_dir), Path(out_dir), metric, stage, mode, reduce).table


def _rank_into(
    stage_dir: Path, out: Path, metric: str, stage: str | None, mode: str | None, reduce: str
) -> Study:
    study = _load_and_rank([stage_dir], metric, stage, mode, reduce)
    write_outputs(study, out / "ranking.csv", out / "ranking.png", out / "report.md", out / "trials.csv")
    return study


def _load_and_rank(
    paths: list[Path],
    metric: str,
    stage: str | None,
    mode: str | None,
    reduce: str,
    strategies: Sequence[str] = (),
) -> Study:
    inputs = [resolve_input(path, stage) for path in paths]
    stages = {chosen for _, chosen in inputs}
    if len(stages) > 1:
        raise InputError(f"The inputs hold different stages ({', '.join(sorted(stages))}); pass --stage.")
    results = merge_results([load_results(source) for source, _ in inputs])
    if strategies:
        results = only_strategies(results, strategies)
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
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=(),
        metavar="NAME",
        help="rank only these strategies (default: all)",
    )
    parser.add_argument("--out", type=Path, required=True, help="ranking CSV to write")
    parser.add_argument("--plot", type=Path, help="PNG of the metric per strategy")
    parser.add_argument("--report", type=Path, help="Markdown report to write")
    parser.add_argument("--trials", type=Path, help="per-trial CSV to write, for re-ranking")
    return parser


# The files of a stage folder that the ranking reads besides its subfolders (trials, or experiments of
# its parts): its per-trial CSV and history, and Ray's experiment state.
READ_IN_FOLDER = (TRIALS_CSV, history_path(Path(TRIALS_CSV)).name)
RAY_STATE_PREFIXES = (
    "experiment_state",
    "tuner.pkl",
    "basic-variant-state",
    "search_gen_state",
    "searcher-state",
)


def refuse_overwriting_inputs(
    paths: Sequence[Path], stage: str | None, outputs: Sequence[Path | None]
) -> None:
    """Raises InputError when an output (or the per-epoch history written beside an output CSV) would
    overwrite what the ranking reads: an input CSV or the history beside it, or in the stage folder an
    input folder is read from, its per-trial CSV, Ray's state or anything in its subfolders."""
    files: set[Path] = set()
    folders: list[Path] = []
    for path in paths:
        source, _ = resolve_input(path, stage)
        if source.is_file():
            files |= {source.resolve(), history_path(source).resolve()}
        else:
            folders.append(source.resolve())
    written = [Path(path) for path in outputs if path is not None]
    written += [history_path(path) for path in written if path.suffix.lower() == ".csv"]
    for path in written:
        target = path.resolve()
        if target in files or any(_read_in(folder, target) for folder in folders):
            raise InputError(
                f"Writing {path} would overwrite what is ranked (it is an input, the history of one, or a "
                f"file the ranking reads from an input folder). Write the outputs elsewhere, e.g. "
                f"--out ranking.csv."
            )


def _read_in(folder: Path, target: Path) -> bool:
    """Whether the ranking of the stage folder `folder` reads the file `target`."""
    if not target.is_relative_to(folder):
        return False
    return (
        target.parent != folder or target.name in READ_IN_FOLDER or target.name.startswith(RAY_STATE_PREFIXES)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 for input that cannot be ranked)."""
    args = _parser().parse_args(argv)
    try:
        plots = (
            [args.plot, args.plot.with_name(f"{args.plot.stem}_epochs{args.plot.suffix}")]
            if args.plot
            else []
        )
        refuse_overwriting_inputs(args.paths, args.stage, [args.out, args.report, args.trials, *plots])
        study = _load_and_rank(args.paths, args.metric, args.stage, args.mode, args.reduce, args.strategies)
        with warnings_on_stderr():
            written = write_outputs(study, args.out, args.plot, args.report, args.trials)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _print_summary(study, written)
    return 0


@contextmanager
def warnings_on_stderr() -> Iterator[None]:
    """While the block runs, the analysis' warnings are printed to stderr as "warning: ..." lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    logger = logging.getLogger("analysis")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _print_summary(study: Study, written: list[Path]) -> None:
    print(console_table(study))
    for ranked in study.ranked:
        print(f"\n{study.heading(ranked)}:")
        for sentence in (significance_sentence(ranked.ranking), power_sentence(ranked.ranking)):
            print(f"  {sentence}" if sentence else "", end="\n" if sentence else "")
        for note in ranked.ranking.notes:
            print(f"  - {note}")
    for note in study.notes:
        print(f"- {note}")
    print("wrote: " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    raise SystemExit(main())

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
from pathlib import Path

import pandas as pd

from analysis.outputs import write_outputs
from analysis.raced import rank_race, read_race_record
from analysis.ranked import RankedStage
from analysis.ranking import rank_results
from analysis.report import console_table, verdict_sentences
from analysis.results import (
    InputError,
    Results,
    history_path,
    load_results,
    merge_results,
    only_strategies,
    resolve_input,
    task_names,
)
from analysis.values import REDUCTIONS
from trainables.metrics import EVAL_ACCURACY
from trainables.vocabulary import RACE_FILE, TRIAL_STAGES, TRIALS_CSV, StudyLayout


def rank_into(
    stage_dir: Path | str, out_dir: Path | str, metric: str | None = None, stage: str | None = None
) -> RankedStage:
    """Like `rank_study`, but returns the RankedStage, for a caller that prints or picks from it."""
    return _rank_into(Path(stage_dir), Path(out_dir), metric, stage, None, "last")


def rank_study(
    stage_dir: Path | str,
    out_dir: Path | str,
    metric: str | None = None,
    stage: str | None = None,
    mode: str | None = None,
    reduce: str = "last",
) -> pd.DataFrame:
    """Ranks a study or stage folder (or per-trial CSV) and writes, into `out_dir`:
    ranking.csv, trials.csv, report.md, ranking.png and ranking_epochs.png (with several
    rankings, one pair of plots per aggregation, e.g. ranking_best_config.png).

    `metric` defaults to eval_accuracy (a raced stage: the metric its race decided on); `stage` to
    the folder's name if it is a stage, else replicate; `mode` to min for losses, else max. A raced
    stage (its folder holds the race record) is ranked by its race (`analysis.raced`). Returns the
    ranking table; raises InputError for input that cannot be ranked (its message says why).
    """
    return _rank_into(Path(stage_dir), Path(out_dir), metric, stage, mode, reduce).table


def _rank_into(
    stage_dir: Path, out: Path, metric: str | None, stage: str | None, mode: str | None, reduce: str
) -> RankedStage:
    study = load_and_rank([stage_dir], metric, stage, mode, reduce)
    layout = StudyLayout(out, str(out))
    write_outputs(study, layout.ranking_csv, layout.ranking_plot, layout.report, layout.trials_csv)
    return study


def load_and_rank(
    paths: list[Path],
    metric: str | None = None,
    stage: str | None = None,
    mode: str | None = None,
    reduce: str = "last",
    strategies: Sequence[str] = (),
    race: Path | None = None,
) -> RankedStage:
    """Load the inputs (study folders, stage folders or per-trial CSVs) as one stage and rank it: by
    its race when `race` names a race record or a single stage folder holds one, else by
    `analysis.ranking`."""
    inputs = [resolve_input(path, stage) for path in paths]
    stages = {chosen for _, chosen in inputs}
    if len(stages) > 1:
        raise InputError(f"The inputs hold different stages ({', '.join(sorted(stages))}); pass --stage.")
    results = merge_results([load_results(source) for source, _ in inputs])
    return rank_loaded(results, stages.pop(), metric, mode, reduce, strategies, race or _race_beside(inputs))


def rank_loaded(
    results: Results,
    stage: str,
    metric: str | None = None,
    mode: str | None = None,
    reduce: str = "last",
    strategies: Sequence[str] = (),
    race: Path | None = None,
) -> RankedStage:
    """Rank loaded trials of `stage`: by the race record `race` when given, else by `analysis.ranking`
    (only `strategies` when given)."""
    if race is not None:
        if strategies or reduce != "last" or mode:
            raise InputError(
                "A raced stage is ranked by its race, over all its strategies and each trial's last value; "
                "--strategies, --reduce and --mode do not apply. Rank its trials.csv without the race "
                "record to rank them as a plain replicate stage."
            )
        return rank_race(results, read_race_record(race), metric)
    if strategies:
        results = only_strategies(results, strategies)
    return rank_results(results, stage, metric or EVAL_ACCURACY, mode, reduce)


def _race_beside(inputs: list[tuple[Path, str]]) -> Path | None:
    """The race record of a single raced stage folder given as the input."""
    if len(inputs) != 1 or not inputs[0][0].is_dir():
        return None
    path = inputs[0][0] / RACE_FILE
    return path if path.is_file() else None


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
    parser.add_argument(
        "--metric",
        help="metric to rank by (default eval_accuracy; a raced stage: the one its race decided on)",
    )
    parser.add_argument(
        "--race",
        type=Path,
        help="the race record (race.json) of a raced stage given as a per-trial CSV: rank it by its race",
    )
    parser.add_argument("--stage", choices=TRIAL_STAGES, help="stage of a study folder (default: replicate)")
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
# its parts): its per-trial CSV and history, its race record, and Ray's experiment state.
READ_IN_FOLDER = (TRIALS_CSV, history_path(Path(TRIALS_CSV)).name, RACE_FILE)
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
        study = load_and_rank(
            args.paths, args.metric, args.stage, args.mode, args.reduce, args.strategies, args.race
        )
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


def _print_summary(study: RankedStage, written: list[Path]) -> None:
    tasks = task_names(study.results.trials)
    if tasks:
        print(f"Task: {', '.join(tasks)}")
    print(console_table(study))
    for ranked in study.ranked:
        print(f"\n{study.heading(ranked)}:")
        for sentence in verdict_sentences(ranked):
            print(f"  {sentence}")
        for note in ranked.ranking.notes:
            print(f"  - {note}")
    for note in study.notes:
        print(f"- {note}")
    print("wrote: " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    raise SystemExit(main())

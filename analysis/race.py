"""Replays a racing replicate stage on finished trials: which strategies a race would have dropped,
when, and at what cost, next to the full study's ranking of the same trials.

    python -m analysis.race <trials.csv | study folder | stage folder> [more ...] --out race.json
        [--strategies bottom top ...] [--metric eval_accuracy] [--mode max|min]
        [--setting tuned|fixed] [--alpha 0.05] [--min-seeds 3] [--max-seeds N] [--budget-trials N]

The trials are the replicate stage's (several inputs merge, as in `analysis.rank`). A trial counts
when it finished (status TERMINATED) with a finite value of the metric; each strategy has at most
one such trial per seed. The seeds run in ascending order, round r on the r-th smallest; a strategy
without a usable trial at a round's seed is withdrawn then (see `analysis.racing.replay`).
Each `config/setting` is its own race: when the trials ran several (a study's tuned and fixed
settings), `--setting` picks one. `--max-seeds` defaults to the default design's, capped by the
seeds the trials hold; to replay a race that ran live, pass the --min-seeds, --max-seeds and
--alpha it ran with, since its thresholds depend on them.

The JSON holds the design (its thresholds and the test), the race (reason it ended, winner,
leader, survivors, each drop with its round, seeds, p and threshold, each look's comparisons,
trials used) and the full study's ranking of the same trials (`winner_full`, `agrees`). Bad input
exits with status 2 and a one-paragraph message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis.names import SETTING
from analysis.racing import ALPHA, MAX_SEEDS, MIN_SEEDS, MODES, Race, RaceDesign, replay
from analysis.ranking import rank_results
from analysis.results import InputError, Results, load_results, merge_results, only_strategies, resolve_input
from analysis.stats import Ranking
from analysis.values import trial_values
from trainables.metrics import EVAL_ACCURACY, direction
from trainables.vocabulary import SEED, STRATEGY, Stage


def load_trials(paths: Sequence[Path], strategies: Sequence[str] = ()) -> Results:
    """The replicate-stage trials of all inputs as one table, only the named strategies if any."""
    results = merge_results([load_results(resolve_input(Path(path), Stage.REPLICATE)[0]) for path in paths])
    return only_strategies(results, strategies) if strategies else results


def one_setting(results: Results, setting: str | None) -> Results:
    """The trials of one `config/setting`: the one named, else the only one the trials ran.
    Raises InputError when the trials ran several and none is named, or the named one is absent."""
    trials = results.trials
    present = sorted(map(str, trials[SETTING].dropna().unique())) if SETTING in trials else []
    if setting is None:
        if len(present) > 1:
            raise InputError(
                f"The trials ran at {len(present)} settings ({', '.join(present)}), and each is its own "
                f"race: pass --setting {present[0]} (or another of them)."
            )
        return results
    if setting not in present:
        raise InputError(
            f"No trial ran at the setting '{setting}'; the trials have "
            f"{', '.join(present) if present else 'no config/setting'}. Pass one of them, or leave "
            "--setting out."
        )
    kept = trials[trials[SETTING].astype(str) == setting].reset_index(drop=True)
    return Results(kept, results.history, results.source, results.notes)


def race_table(results: Results, metric: str) -> pd.DataFrame:
    """Strategies x seeds (both ascending): each strategy's usable value at each seed, NaN where its
    trial failed, did not finish, has no finite value or is missing. Seeds are those of any trial.
    Raises InputError when a strategy has two usable trials at one seed."""
    values = trial_values(results, metric)
    usable = values[values["excluded"] == ""]
    counts = usable.groupby([STRATEGY, SEED]).size()
    if (counts > 1).any():
        twice = ", ".join(f"{strategy} seed {seed}" for strategy, seed in counts.index[counts > 1][:3])
        raise InputError(
            f"Some strategies have several finished trials at one seed ({twice}); a race takes one value "
            "per strategy and seed. Pass each study once, or pick a setting with --setting."
        )
    seeds = sorted(values[SEED].unique())
    if any(seed != round(seed) for seed in seeds):
        raise InputError(
            f"The trials have seeds that are not whole numbers ({', '.join(map(str, seeds[:5]))}); a race "
            "runs seed 0, 1, 2, ...: check the seed column."
        )
    table = usable.pivot(index=STRATEGY, columns=SEED, values="value")
    strategies = sorted(values[STRATEGY].unique())
    return table.reindex(index=strategies, columns=seeds).astype(float)


def design_for(table: pd.DataFrame, alpha: float, min_seeds: int, max_seeds: int | None) -> RaceDesign:
    """The race design for the table's strategies; max_seeds defaults to MAX_SEEDS capped by the
    seeds the table holds. Raises InputError when the table cannot hold a test, or for settings no
    design accepts."""
    seeds = table.shape[1]
    if seeds < min_seeds:
        raise InputError(
            f"The trials hold {seeds} seed(s); a race tests first after {min_seeds} (--min-seeds). "
            "Lower --min-seeds (at least 2) or add seeds."
        )
    try:
        return RaceDesign(
            strategies=len(table),
            alpha=alpha,
            min_seeds=min_seeds,
            max_seeds=min(MAX_SEEDS, seeds) if max_seeds is None else max_seeds,
        )
    except ValueError as error:
        raise InputError(f"{error} Change --alpha, --min-seeds or --max-seeds.") from error


def full_ranking(results: Results, metric: str, mode: str) -> Ranking:
    """The full study's ranking of the same trials (`analysis.rank`)."""
    return rank_results(results, Stage.REPLICATE, metric, mode).ranked[0].ranking


def summary(race: Race, table: pd.DataFrame, results: Results, ranking: Ranking) -> dict[str, object]:
    """The race next to the full study: what the JSON holds besides the inputs and the design."""
    ranked = ranking.table.set_index(STRATEGY)
    verdicts = {strategy: _optional(value, bool) for strategy, value in ranked["tied_with_best"].items()}
    return {
        "strategies": list(race.strategies),
        "seeds": [int(seed) for seed in table.columns],
        "rounds": race.round,
        "reason": race.reason,
        "winner": race.winner,
        "leader": race.leader,
        "survivors": race.survivors,
        "dropped": [drop.to_dict() for drop in race.drops],
        "withdrawn": [asdict(withdrawal) for withdrawal in race.withdrawals],
        "looks": [look.to_dict() for look in race.looks],
        "trials_used": race.trials_used,
        "trials_full": len(results.trials),
        "trials_fraction": race.trials_used / len(results.trials),
        "winner_full": ranking.best,
        "tied_with_best_full": [strategy for strategy, tied in verdicts.items() if tied is True],
        # A drop agrees with the full study only where its ranking found that strategy worse than the best.
        "agrees": all(verdicts[drop.strategy] is False for drop in race.drops),
        "ranking_full": [
            {
                "strategy": strategy,
                "rank": _optional(row["rank"], int),
                "mean": _optional(row["mean"], float),
                "p_vs_best": _optional(row["p_vs_best"], float),
                "tied_with_best": verdicts[strategy],
            }
            for strategy, row in ranked.iterrows()
        ],
    }


def _optional(value: object, kind: type) -> object:
    """`value` as `kind`, None where it is missing (NaN, NA)."""
    return None if pd.isna(value) else kind(value)


def run_race(
    paths: Sequence[Path],
    strategies: Sequence[str] = (),
    metric: str = EVAL_ACCURACY,
    mode: str | None = None,
    setting: str | None = None,
    alpha: float = ALPHA,
    min_seeds: int = MIN_SEEDS,
    max_seeds: int | None = None,
    budget_trials: int | None = None,
) -> dict[str, object]:
    """Loads the trials, replays the race and ranks the full study; returns the JSON-ready result.
    Raises InputError for input that cannot be raced (its message names the fix)."""
    mode = mode or direction(metric)
    if mode not in MODES:
        raise InputError(f"Unknown mode '{mode}'; use max (higher is better) or min.")
    if budget_trials is not None and budget_trials < 0:
        raise InputError(f"--budget-trials must not be negative, not {budget_trials}.")
    results = one_setting(load_trials(paths, strategies), setting)
    table = race_table(results, metric)
    design = design_for(table, alpha, min_seeds, max_seeds)
    ranking = full_ranking(results, metric, mode)
    race = replay(table, design, mode, budget_trials)
    present = results.trials[SETTING].dropna().unique() if SETTING in results.trials else []
    return {
        "inputs": [str(path) for path in paths],
        "metric": metric,
        "mode": mode,
        "setting": str(present[0]) if len(present) == 1 else None,
        "budget_trials": budget_trials,
        "design": race.design.to_dict(),
        **summary(race, table, results, ranking),
    }


def describe(result: dict) -> list[str]:
    """The result in a few lines, for the terminal."""
    used, full = result["trials_used"], result["trials_full"]
    verdict = f"{result['winner']} wins" if result["winner"] else f"no winner (leader {result['leader']})"
    lines = [
        f"race: {verdict} after {result['rounds']} round(s), {result['reason']}; "
        f"{used} of {full} trials ({used / full:.0%})"
    ]
    for drop in result["dropped"]:
        lines.append(
            f"  dropped {drop['strategy']} after round {drop['round']}: behind {drop['leader']} by "
            f"{drop['mean_gap']:.4g}, p = {drop['p']:.3g} <= {drop['threshold']:.3g} ({drop['test']})"
        )
    for withdrawal in result["withdrawn"]:
        lines.append(
            f"  withdrew {withdrawal['strategy']} at seed {withdrawal['seed']}: {withdrawal['reason']}"
        )
    agreement = (
        "agrees" if result["agrees"] else "DISAGREES: it dropped a strategy the full study did not find worse"
    )
    lines.append(f"full study: {result['winner_full']} is best; the race {agreement}")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.race",
        description="Replay a racing replicate stage on finished trials and compare it with the full study.",
    )
    parser.add_argument(
        "paths",
        type=Path,
        nargs="+",
        metavar="path",
        help="per-trial CSV, study or stage folder; several merge",
    )
    parser.add_argument("--strategies", nargs="+", default=(), metavar="NAME", help="race only these")
    parser.add_argument("--metric", default=EVAL_ACCURACY, help="metric to race on")
    parser.add_argument("--mode", choices=MODES, help="better direction (default: min for losses)")
    parser.add_argument("--setting", help="the config/setting to race when the trials ran several")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="family-wise error over the whole race")
    parser.add_argument("--min-seeds", type=int, default=MIN_SEEDS, help="the first round that tests")
    parser.add_argument(
        "--max-seeds",
        type=int,
        help=f"the last round (default {MAX_SEEDS}, capped by the seeds the trials hold)",
    )
    parser.add_argument("--budget-trials", type=int, help="start no round that would exceed this many trials")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 for input that cannot be raced)."""
    args = _parser().parse_args(argv)
    try:
        result = run_race(
            args.paths,
            args.strategies,
            args.metric,
            args.mode,
            args.setting,
            args.alpha,
            args.min_seeds,
            args.max_seeds,
            args.budget_trials,
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print("\n".join(describe(result)))
    print(f"wrote: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m benchmarks.race_power --out docs/race/power.json`: the racing test's power on the gaps
the published studies measured, and its error rate, by simulation.

* `power`: for each published study (`PUBLISHED`), the best strategy and the runner-up (the one whose
  mean is closest to the best), with the mean and standard deviation of their per-seed differences
  measured on the study's trials. Simulated races of those two, the differences normal with that
  mean and s.d., at the first-drop threshold of a design for all the study's strategies (the runner-up
  as the first drop: the hardest case; after another drop the threshold is larger). Per scenario and
  max_seeds: the probability that the runner-up is dropped by max_seeds, the mean round at which it
  is, and the expected rounds and trials of the pair.
* `studies`: each study resampled whole: per-seed vectors of all its strategies drawn from a normal
  distribution with the study's means and covariance over its seeds, raced with the design for its
  strategies; the probability that the race names the study's best as its winner, that it drops
  the best, that it drops the runner-up (and the mean round), and the expected trials.
* `error`: the family-wise error rate with all strategies equal (any drop is an error), for normal,
  heavy-tailed (Student t, 3 degrees of freedom) and skewed noise (one strategy collapses in 5% of its
  runs: -6 then, +6 * 0.05 / 0.95 otherwise, so its mean is that of the others), for a design that
  compares only with the sample best (Bonferroni over k - 1 instead of all pairs), and through the
  engine after a right drop (one strategy far worse, four equal: the stepped-down threshold's least
  favourable case).

Every simulation has its own fixed seed, so the JSON is reproducible; a progress line per scenario
goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.race import load_trials, one_setting, race_table
from analysis.racing import MAX_SEEDS, RaceDesign, first_drop_rounds, replay
from trainables.metrics import EVAL_ACCURACY, direction

REPO = Path(__file__).resolve().parents[1]
RACES = 4000
STUDY_RACES = 2000
ERROR_RACES = 100_000
ENGINE_ERROR_RACES = 4000
_CHUNK = 20_000


@dataclass(frozen=True)
class Published:
    """A published study the racing replays: its per-trial CSVs (globs relative to the repository),
    the strategies raced (all when empty), its setting, and the JSON its replay writes."""

    name: str
    inputs: tuple[str, ...]
    strategies: tuple[str, ...] = ()
    setting: str | None = None

    @property
    def out(self) -> str:
        return f"docs/race/{self.name}.json"

    def paths(self) -> list[str]:
        """The input files, relative to the repository, globs expanded in sorted order."""
        return [str(path.relative_to(REPO)) for pattern in self.inputs for path in sorted(REPO.glob(pattern))]

    def command(self) -> list[str]:
        """The arguments of `python -m analysis.race` that replay it."""
        return [*self.paths(), *self._options()]

    def shell_command(self) -> str:
        """The command line that replays it, globs unexpanded (as docs/race/README.md gives it)."""
        return " ".join(["python -m analysis.race", *self.inputs, *self._options()])

    def _options(self) -> list[str]:
        chosen = ["--strategies", *self.strategies] if self.strategies else []
        setting = ["--setting", self.setting] if self.setting else []
        return [*chosen, *setting, "--out", self.out]


PUBLISHED = [
    Published(
        "mnli-12to6", ("docs/mnli-12to6/*/trials.csv",), ("bottom", "top", "odd", "even", "distilbert")
    ),
    Published("mnli-tuned", ("docs/mnli/trials.csv",), setting="tuned"),
    Published("mnli-fixed", ("docs/mnli/trials.csv",), setting="fixed"),
    Published("sst2", ("docs/sst2/trials.csv",)),
]


def scores(study: Published, metric: str = EVAL_ACCURACY) -> pd.DataFrame:
    """The study's strategies x seeds, higher is better."""
    results = one_setting(
        load_trials([REPO / path for path in study.paths()], study.strategies), study.setting
    )
    table = race_table(results, metric)
    return table if direction(metric) == "max" else -table


def measured_gap(table: pd.DataFrame) -> dict[str, object]:
    """The best strategy, the runner-up, and their per-seed differences' mean and s.d. (ddof 1)."""
    means = table.mean(axis=1)
    best = str(means.idxmax())
    runner_up = str((means[best] - means.drop(best)).idxmin())
    differences = (table.loc[best] - table.loc[runner_up]).dropna()
    gap, sd = float(differences.mean()), float(differences.std(ddof=1))
    return {
        "strategies": len(table),
        "best": best,
        "runner_up": runner_up,
        "seeds": len(differences),
        "mean_gap": gap,
        "sd": sd,
        "d_z": gap / sd,
    }


def pair_power(gap: float, sd: float, design: RaceDesign, races: int, seed: int) -> dict[str, float]:
    """Races of the best against a runner-up `gap` behind (per-seed differences normal, s.d. `sd`),
    at the first-drop threshold of `design`."""
    pair = RaceDesign(
        strategies=2,
        alpha=design.alpha,
        min_seeds=design.min_seeds,
        max_seeds=design.max_seeds,
        thresholds=(design.threshold(0),),
    )
    rng = np.random.default_rng(seed)
    rounds, dropped, best_dropped = [], [], 0
    for differences in rng.normal(gap, sd, size=(races, design.max_seeds)):
        values = pd.DataFrame([differences, np.zeros_like(differences)], index=["best", "runner_up"])
        race = replay(values, pair)
        rounds.append(race.round)
        dropped += [drop.round for drop in race.drops if drop.strategy == "runner_up"]
        best_dropped += any(drop.strategy == "best" for drop in race.drops)
    return {
        "threshold": design.threshold(0),
        "power": len(dropped) / races,
        "mean_round_dropped": float(np.mean(dropped)) if dropped else None,
        "expected_rounds": float(np.mean(rounds)),
        "expected_trials": 2 * float(np.mean(rounds)),
        "best_dropped": best_dropped / races,
    }


def study_race(table: pd.DataFrame, design: RaceDesign, races: int, seed: int) -> dict[str, float]:
    """The study resampled whole: seeds drawn from a normal distribution with its means and
    covariance, each raced with `design`."""
    measured = measured_gap(table)
    best, runner_up = measured["best"], measured["runner_up"]
    complete = table.dropna(axis=1)
    mean, covariance = complete.mean(axis=1).to_numpy(), np.cov(complete.to_numpy())
    rng = np.random.default_rng(seed)
    winners, best_dropped, runner_rounds, trials = 0, 0, [], []
    for _ in range(races):
        draw = rng.multivariate_normal(mean, covariance, size=design.max_seeds, method="eigh").T
        race = replay(pd.DataFrame(draw, index=table.index), design)
        winners += race.winner == best
        best_dropped += any(drop.strategy == best for drop in race.drops)
        runner_rounds += [drop.round for drop in race.drops if drop.strategy == runner_up]
        trials.append(race.trials_used)
    return {
        "winner_is_best": winners / races,
        "best_dropped": best_dropped / races,
        "runner_up_dropped": len(runner_rounds) / races,
        "mean_round_runner_up_dropped": float(np.mean(runner_rounds)) if runner_rounds else None,
        "expected_trials": float(np.mean(trials)),
        "trials_fraction": float(np.mean(trials)) / (len(table) * design.max_seeds),
    }


def error_rate(
    design: RaceDesign,
    noise: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray],
    races: int,
    seed: int,
) -> float:
    """The fraction of races of equal strategies (noise drawn by `noise`) that drop one."""
    rng = np.random.default_rng(seed)
    errors = 0
    for start in range(0, races, _CHUNK):
        shape = (min(_CHUNK, races - start), design.strategies, design.max_seeds)
        errors += int((first_drop_rounds(noise(rng, shape), design) > 0).sum())
    return errors / races


def collapsing(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Normal noise, except strategy 0: -6 in 5% of its runs, +6 * 0.05 / 0.95 otherwise (mean 0)."""
    values = rng.normal(size=shape)
    values[:, 0, :] = np.where(rng.random((shape[0], shape[2])) < 0.05, -6.0, 6 * 0.05 / 0.95)
    return values


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape)


def student_t3(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_t(3, size=shape)


def error_cases(races: int, engine_races: int) -> list[dict[str, object]]:
    """The family-wise error rate in each case the module docstring lists, with its Monte Carlo s.e."""
    cases = [("normal", k, normal) for k in (2, 5, 7, 10)]
    cases += [("student t, 3 df", 5, student_t3), ("one strategy collapses in 5% of runs", 2, collapsing)]
    cases += [("one strategy collapses in 5% of runs", 5, collapsing)]
    rows = []
    for seed, (noise, k, draw) in enumerate(cases):
        rate = error_rate(RaceDesign(strategies=k), draw, races, seed)
        rows.append(_error_row(noise, k, "the design", races, rate))
        _progress(f"error: {noise}, k={k}: {rate:.4f}")
    one_of_four = RaceDesign(strategies=2, alpha=RaceDesign(strategies=5).alpha / 4).threshold(0)
    naive = RaceDesign(strategies=5, thresholds=(one_of_four,) * 4)
    rows.append(
        _error_row("normal", 5, "Bonferroni over k - 1", races, error_rate(naive, normal, races, len(cases)))
    )
    rate, _ = stepped_down(engine_races)
    rows.append(_error_row("normal, one far worse", 5, "the design, engine", engine_races, rate))
    return rows


def stepped_down(races: int, seed: int = 99) -> tuple[float, float]:
    """Through the engine: four equal strategies and one 1000 s.d. worse. Returns the fraction of
    races that drop one of the four, and the fraction whose first drop is the far one at round
    min_seeds (so that the four face the stepped-down threshold from then on)."""
    rng = np.random.default_rng(seed)
    design = RaceDesign(strategies=5)
    offsets = np.array([0, 0, 0, 0, -1000.0])[:, None]
    errors, far_first = 0, 0
    for _ in range(races):
        values = pd.DataFrame(rng.normal(size=(5, design.max_seeds)) + offsets, index=list("abcdf"))
        drops = replay(values, design).drops
        errors += any(drop.strategy != "f" for drop in drops)
        far_first += bool(drops) and (drops[0].strategy, drops[0].round) == ("f", design.min_seeds)
    return errors / races, far_first / races


def _error_row(noise: str, k: int, design: str, races: int, rate: float) -> dict[str, object]:
    return {
        "noise": noise,
        "strategies": k,
        "design": design,
        "races": races,
        "family_wise_error": rate,
        "se": float(np.sqrt(rate * (1 - rate) / races)),
    }


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(races: int, study_races: int, error_races: int, engine_races: int) -> dict[str, object]:
    """Everything the module docstring lists, as JSON-ready values."""
    power, studies = [], []
    for index, study in enumerate(PUBLISHED):
        table = scores(study)
        measured = measured_gap(table)
        # The replay's design (max_seeds capped by the seeds the study ran) and the default one.
        for max_seeds in sorted({min(MAX_SEEDS, table.shape[1]), MAX_SEEDS}):
            design = RaceDesign(strategies=len(table), max_seeds=max_seeds)
            seed = 10 * index + max_seeds
            pair = pair_power(measured["mean_gap"], measured["sd"], design, races, seed)
            power.append({"study": study.name, **measured, "max_seeds": max_seeds, "races": races, **pair})
            whole = study_race(table, design, study_races, seed)
            studies.append({"study": study.name, "max_seeds": max_seeds, "races": study_races, **whole})
            _progress(f"{study.name}, max_seeds {max_seeds}: power {pair['power']:.3f}")
    return {"power": power, "studies": studies, "error": error_cases(error_races, engine_races)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.race_power", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--races", type=int, default=RACES, help="pair races per power scenario")
    parser.add_argument("--study-races", type=int, default=STUDY_RACES, help="races per resampled study")
    parser.add_argument("--error-races", type=int, default=ERROR_RACES, help="races per error case")
    parser.add_argument(
        "--engine-races", type=int, default=ENGINE_ERROR_RACES, help="engine races, stepped-down case"
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    args = parser.parse_args(argv)
    result = run(args.races, args.study_races, args.error_races, args.engine_races)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    print(f"wrote: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

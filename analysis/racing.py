"""Racing strategies over seeds: drop a strategy as soon as it is significantly worse than the leader.

A race runs in rounds. Round r runs the r-th seed for every surviving strategy, so the survivors
always share their seeds and every comparison is paired by seed. After each round from `min_seeds`
on, the leader is the survivor with the best mean, and every other survivor whose paired test
against the leader crosses the threshold is dropped. The race ends when one strategy is left, after
`max_seeds` rounds with several undecided survivors, or when a budget runs out.

The test. For a survivor A and the leader L, the per-seed differences d = L - A (on the side where
higher is better) are tested with the paired t-test, two-sided p; where the differences are all
equal (zero spread, e.g. two students that collapsed to constant predictions) a t statistic is
undefined and the exact sign test over the nonzero differences is used instead (2 / 2^n for n
same-sign differences, 1 when all are zero). A drop is a claim "A is worse than L". Its error is
dropping a strategy that is not truly worse than its leader, and the design keeps the probability
of any such error, over all rounds and all comparisons, at most alpha, whatever the true means are,
provided each pair's per-seed differences are independent across seeds and normal with one mean and
one variance.

Why that holds. Under equal means, the sequence of a pair's t statistics t_n over the looks
n = min_seeds..max_seeds (each on the first n seeds) has one distribution, free of the mean and
the variance. So one constant nominal p per look (a Pocock-type group-sequential boundary) can be
calibrated by simulation such that the pair crosses it in a given direction at any look with
probability `level`; with unequal means the crossing in the wrong direction is rarer still (the
differences only shift down). The leader is chosen from the data, so every ordered pair (L, A) of
the k strategies could be tested: m = k(k-1)/2 pairs, 2m ordered ones. The first drop uses
level alpha / (2m) (Bonferroni over the ordered pairs). A drop that follows j earlier drops uses
level alpha / (m + t_j), where t_j is the largest number of pairs with equal means that k
strategies can have when at least j pairs differ (the partitions of k into groups of equal means;
Shaffer, 1986). Proof: take the first wrong drop; the j drops before it were right, so at least j
pairs differ and the number t of pairs with equal means is at most t_j; the true claims
"A is not worse than L" number m + t (both orders of an equal pair, one of an unequal one), and
the wrong drop made one of them cross its boundary at level alpha / (m + t_j) <= alpha / (m + t).
So every wrong drop lies in the event that one of these m + t claims crosses its boundary at level
alpha / (m + t) at some look, whose probability is at most (m + t) * alpha / (m + t) = alpha. Ending
a pair early (a drop, a budget, one strategy left) only removes looks, which keeps the bound.

The calibration is a Monte Carlo over CALIBRATION_DRAWS standard normal sequences (each also
negated), with a fixed seed; each threshold is the order statistic whose crossing probability is
at most its level with CALIBRATION_CONFIDENCE confidence: the Monte Carlo error makes the test
slightly conservative rather than liberal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import special, stats

from analysis.power import ALPHA

MIN_SEEDS = 3  # a t-test on 2 seeds has 1 degree of freedom: it almost never rejects at these levels
MAX_SEEDS = 10
CALIBRATION_DRAWS = 1_000_000
CALIBRATION_SEED = 0
CALIBRATION_CONFIDENCE = 0.99
# The calibration keeps the crossing probabilities up to this (the largest level a design of
# alpha = 0.05 needs is 0.025, for two strategies).
CALIBRATION_TAIL = 0.05
_CALIBRATION_CHUNK = 100_000
# Differences whose spread is below this (relative to the values' size) are all equal: the sign test.
SPREAD_TOLERANCE = 1e-12
# Means closer than this rank as equal, so that summation order cannot change the leader.
_TIE_DECIMALS = 12

# Why a race ended.
ONE_LEFT = "one strategy left"
NONE_LEFT = "no strategy left"
UNDECIDED = "undecided at max_seeds"
BUDGET = "budget"
OUT_OF_SEEDS = "out of seeds"

# Why a replay withdraws a strategy: the table has no usable value for it at the round's seed.
NO_VALUE = "no usable trial"
T_TEST = "paired t"
SIGN_TEST = "sign"
MODES = ("max", "min")


@lru_cache(maxsize=64)
def equal_pair_counts(strategies: int) -> tuple[int, ...]:
    """How many pairs of `strategies` strategies can have equal means, ascending: the sums of
    g(g-1)/2 over the groups of equal means, for every partition of the strategies into groups."""
    reachable: list[set[int]] = [{0}]
    for total in range(1, strategies + 1):
        reachable.append(
            {math.comb(g, 2) + rest for g in range(1, total + 1) for rest in reachable[total - g]}
        )
    return tuple(sorted(reachable[strategies]))


def step_levels(alpha: float, strategies: int) -> tuple[float, ...]:
    """The one-sided crossing probability allowed to one ordered pair at each step: entry j is the
    level of a drop that follows j earlier drops, alpha / (m + t_j) (see the module docstring);
    k - 1 entries for k strategies, the first alpha / (2m)."""
    pairs = math.comb(strategies, 2)
    counts = equal_pair_counts(strategies)
    levels = []
    for drops in range(strategies - 1):
        most_equal = max(count for count in counts if count <= pairs - drops)
        levels.append(alpha / (pairs + most_equal))
    return tuple(levels)


def running_t(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """The one-sample t statistic of each prefix along `axis`: for rows of per-seed differences
    (axis -1), entry [i, n - 1] is the t of z[i, :n]; NaN for n = 1, +-inf for a zero spread."""
    shape = [1] * z.ndim
    shape[axis] = z.shape[axis]
    n = np.arange(1, z.shape[axis] + 1, dtype=float).reshape(shape)
    total = np.cumsum(z, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (np.cumsum(z * z, axis=axis) - total * total / n) / (n - 1)
        return total / np.sqrt(variance * n)


@lru_cache(maxsize=8)
def least_p_tail(min_seeds: int, max_seeds: int, tail: float, draws: int, seed: int) -> np.ndarray:
    """For `draws` standard normal sequences of `max_seeds` values and their negations (2 * draws
    samples), the smallest one-sided (upper) t-test p of each over the looks n = min_seeds..max_seeds:
    those at most `tail`, sorted (the others are above it). The fraction of the 2 * draws samples at
    most q estimates the probability that a pair of equal strategies crosses the nominal one-sided
    p q at some look, in a given direction."""
    rng = np.random.default_rng(seed)
    df = np.arange(min_seeds, max_seeds + 1, dtype=float)[:, None] - 1
    critical = stats.t.isf(tail, df)  # a look with a larger t has p below tail
    parts = []
    for start in range(0, draws, _CALIBRATION_CHUNK):
        z = rng.standard_normal((max_seeds, min(_CALIBRATION_CHUNK, draws - start)))
        t = running_t(z, axis=0)[min_seeds - 1 :]
        for sign in (1, -1):  # the sequence, and the sequence negated
            crossing = (sign * t >= critical).any(axis=0)
            parts.append(special.stdtr(df, -sign * t[:, crossing]).min(axis=0))
    least = np.sort(np.concatenate(parts))
    least = least[least <= tail]
    least.flags.writeable = False
    return least


def calibrated_threshold(
    level: float, tail: np.ndarray, samples: int, confidence: float = CALIBRATION_CONFIDENCE
) -> float:
    """The two-sided nominal p (twice the one-sided one) a pair must reach at some look, such that a
    pair of equal strategies crosses it in one direction with probability at most `level`, with
    `confidence`: the r-th smallest of the `samples` calibration values (`tail` holds the smallest
    of them, sorted), r the (1 - confidence) quantile of the binomial count of values below the true
    level-quantile. Raises ValueError when the calibration cannot resolve the level."""
    rank = int(stats.binom.ppf(1 - confidence, samples, level))
    if not 1 <= rank <= len(tail):
        raise ValueError(
            f"{samples} calibration samples cannot resolve a crossing probability of {level:.3g}; "
            "use more draws or fewer strategies."
        )
    return float(2 * tail[rank - 1])


@dataclass(frozen=True, kw_only=True)
class RaceDesign:
    """The racing test for `strategies` strategies: its family-wise error `alpha`, the first look
    (`min_seeds`) and the last (`max_seeds`), and the nominal two-sided p thresholds, entry j for a
    drop that follows j earlier drops (computed by calibration unless given, e.g. when a race is
    restored). Raises ValueError for settings that cannot define a race."""

    strategies: int
    alpha: float = ALPHA
    min_seeds: int = MIN_SEEDS
    max_seeds: int = MAX_SEEDS
    thresholds: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.strategies < 1:
            raise ValueError(f"A race needs at least one strategy, not {self.strategies}.")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie between 0 and 1, not {self.alpha}.")
        if self.min_seeds < 2:
            raise ValueError(
                f"min_seeds must be at least 2 (a paired t-test needs 2 seeds), not {self.min_seeds}."
            )
        if self.max_seeds < self.min_seeds:
            raise ValueError(f"max_seeds ({self.max_seeds}) must be at least min_seeds ({self.min_seeds}).")
        if not self.thresholds and self.strategies > 1:
            tail = max(CALIBRATION_TAIL, 2 * max(self.levels))
            least = least_p_tail(self.min_seeds, self.max_seeds, tail, CALIBRATION_DRAWS, CALIBRATION_SEED)
            samples = 2 * CALIBRATION_DRAWS
            computed = tuple(calibrated_threshold(level, least, samples) for level in self.levels)
            object.__setattr__(self, "thresholds", computed)
        if len(self.thresholds) != self.strategies - 1:
            raise ValueError(
                f"A race of {self.strategies} strategies has {self.strategies - 1} thresholds, "
                f"not {len(self.thresholds)}."
            )
        if not all(0 < value < 1 for value in self.thresholds):
            raise ValueError(f"Thresholds are p values between 0 and 1, not {self.thresholds}.")
        object.__setattr__(self, "thresholds", tuple(float(value) for value in self.thresholds))

    @property
    def pairs(self) -> int:
        """m = k(k-1)/2: every pair the data could make a (leader, other) pair."""
        return math.comb(self.strategies, 2)

    @property
    def levels(self) -> tuple[float, ...]:
        """One-sided crossing probability per ordered pair at each step (see `step_levels`)."""
        return step_levels(self.alpha, self.strategies)

    def threshold(self, drops: int) -> float:
        """The nominal two-sided p a strategy must reach to be dropped after `drops` earlier drops."""
        return self.thresholds[min(drops, len(self.thresholds) - 1)]

    def first_drop_gaps(self) -> dict[int, float]:
        """For each look (n seeds), the least mean per-seed gap between the leader and another
        strategy, in standard deviations of their per-seed gaps, at which the paired t-test makes the
        race's first drop: the t statistic that reaches the first threshold, over sqrt(n). Empty for a
        race of one strategy."""
        if not self.thresholds:
            return {}
        looks = range(self.min_seeds, self.max_seeds + 1)
        return {n: float(stats.t.isf(self.thresholds[0] / 2, n - 1) / math.sqrt(n)) for n in looks}

    def gaps_text(self) -> str:
        """`first_drop_gaps` in words, e.g. "94/19/8.9 SDs of the per-seed gaps after 3/4/5 seeds"."""
        gaps = self.first_drop_gaps()
        return (
            f"{'/'.join(f'{gap:.2g}' for gap in gaps.values())} SDs of the per-seed gaps after "
            f"{'/'.join(map(str, gaps))} seeds"
        )

    @property
    def description(self) -> str:
        """What the test is and what it assumes, for reports."""
        first = self.thresholds[0] if self.thresholds else float("nan")
        return " ".join(
            [
                f"Racing for {self.min_seeds} to {self.max_seeds} seeds: after each round from the",
                f"{_ordinal(self.min_seeds)} seed on, each survivor is compared with the leader (the",
                "survivor with the best mean) by the paired t-test on their per-seed differences (the exact",
                "sign test where the differences are all equal), and dropped when its two-sided p is at most",
                "the threshold. The threshold is one nominal p for every round (a Pocock-type",
                "group-sequential boundary), calibrated by simulation over the",
                f"{self.pairs} pairs of the {self.strategies} strategies and stepped down as strategies are",
                "dropped (Shaffer-type):",
                f"{first:.3g} for the first drop, which a mean gap to the leader reaches at",
                f"{self.gaps_text()}." if self.thresholds else "",
                "The chance of ever dropping a strategy that is not worse",
                f"than its leader is at most alpha = {self.alpha:g} over all rounds, assuming each pair's",
                "per-seed differences are independent across seeds and normal with one mean and one",
                "variance.",
            ]
        )

    def to_dict(self) -> dict[str, object]:
        """The design as JSON-ready values; `from_dict` restores it without recalibrating."""
        return {
            "strategies": self.strategies,
            "alpha": self.alpha,
            "min_seeds": self.min_seeds,
            "max_seeds": self.max_seeds,
            "pairs": self.pairs,
            "levels": list(self.levels),
            "thresholds": list(self.thresholds),
            "calibration": {
                "draws": CALIBRATION_DRAWS,
                "seed": CALIBRATION_SEED,
                "confidence": CALIBRATION_CONFIDENCE,
            },
            "test": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RaceDesign:
        keys = ("strategies", "alpha", "min_seeds", "max_seeds")
        return cls(**{key: data[key] for key in keys}, thresholds=tuple(data["thresholds"]))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def paired_p(differences: np.ndarray, scale: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p that the mean per-seed difference is zero, for each row of `differences` (the
    last axis runs over the seeds, at least 2): the paired t-test, or the exact sign test over the
    nonzero differences where a row's differences are all equal (their spread at most
    SPREAD_TOLERANCE times `scale`, the size of the values compared, at least 1; one per row or one
    for all). Returns the p and the test name of each row."""
    d = np.asarray(differences, dtype=float)
    n = d.shape[-1]
    if n < 2:
        raise ValueError("A paired test needs at least 2 seeds.")
    tolerance = SPREAD_TOLERANCE * np.maximum(scale, 1.0)
    equal = np.ptp(d, axis=-1) <= tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        t = d.mean(axis=-1) / d.std(axis=-1, ddof=1) * math.sqrt(n)
    p = np.where(equal, 1.0, 2 * special.stdtr(n - 1, -np.abs(t)))
    for row in zip(*np.nonzero(equal), strict=True):
        limit = tolerance if np.ndim(tolerance) == 0 else tolerance[row]
        nonzero = d[row][np.abs(d[row]) > limit]
        if len(nonzero):
            p[row] = stats.binomtest(int((nonzero > 0).sum()), len(nonzero)).pvalue
    return p, np.where(equal, SIGN_TEST, T_TEST)


@dataclass(frozen=True)
class Drop:
    """A strategy dropped after `round`: significantly worse than `leader` over `seeds`.
    `mean_gap` is the leader's mean advantage (positive), `p` the raw two-sided p of `test`, and
    `threshold` the nominal p it reached (of its step)."""

    strategy: str
    round: int
    seeds: tuple[int, ...]
    leader: str
    mean_gap: float
    p: float
    threshold: float
    test: str

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "seeds": list(self.seeds)}


@dataclass(frozen=True)
class Look:
    """What one decided round from min_seeds on compared: each other survivor against `leader`
    over `seeds`, with its mean gap, raw two-sided p and test (in the order given)."""

    round: int
    seeds: tuple[int, ...]
    leader: str
    strategies: tuple[str, ...]
    mean_gaps: tuple[float, ...]
    p: tuple[float, ...]
    tests: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "round": self.round,
            "seeds": list(self.seeds),
            "leader": self.leader,
            "comparisons": [
                {"strategy": s, "mean_gap": gap, "p": p, "test": test}
                for s, gap, p, test in zip(self.strategies, self.mean_gaps, self.p, self.tests, strict=True)
            ],
        }


@dataclass(frozen=True)
class Withdrawal:
    """A strategy that left the race without a test: its trial of `round` (seed `seed`) gave no
    usable value, for `reason`."""

    strategy: str
    round: int
    seed: int
    reason: str


class Race:
    """A deterministic racing state machine.

    Use: `next_round()` gives the (strategy, seed) trials of the round to run; report each with
    `record` (or `withdraw` a strategy whose trial gave no usable value); once all are in,
    `decide()` drops the strategies significantly worse than the leader and may end the race.
    Repeat until `finished`. `stop()` ends it early (e.g. when time runs out); `to_dict` and
    `from_dict` save and resume it with identical decisions.

    `strategies` are the k strategies of `design` (their order breaks ties in the mean); `mode` is
    "max" when higher values are better; `seeds` gives round r its seed (default 0, 1, ...: round r
    runs seed r - 1), and when fewer than `design.max_seeds` are given the race ends when they run
    out; `budget_trials` caps the trials run: a round starts only if all its trials fit. Misuse
    (an unknown strategy, a value for a trial not asked for, deciding an incomplete round) raises
    ValueError.
    """

    def __init__(
        self,
        strategies: Sequence[str],
        design: RaceDesign,
        mode: str = "max",
        seeds: Iterable[int] | None = None,
        budget_trials: int | None = None,
    ) -> None:
        strategies = tuple(str(strategy) for strategy in strategies)
        if len(set(strategies)) != len(strategies):
            raise ValueError(f"The strategies of a race must differ; got {', '.join(strategies)}.")
        if len(strategies) != design.strategies:
            raise ValueError(
                f"The design is for {design.strategies} strategies; the race has {len(strategies)}."
            )
        if mode not in MODES:
            raise ValueError(f"Unknown mode '{mode}'; use max (higher is better) or min.")
        seeds = tuple(range(design.max_seeds) if seeds is None else seeds)
        if any(seed != int(seed) for seed in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"The seeds of a race must be different whole numbers, not {seeds}.")
        seeds = tuple(int(seed) for seed in seeds)
        if budget_trials is not None and budget_trials < 0:
            raise ValueError(f"budget_trials must not be negative, not {budget_trials}.")
        self.strategies = strategies
        self._row = {strategy: row for row, strategy in enumerate(strategies)}
        self.design = design
        self.mode = mode
        self.seeds = seeds[: design.max_seeds]
        self.budget_trials = budget_trials
        self._scores = np.full((len(strategies), len(self.seeds)), np.nan)  # higher is better
        self._alive = list(strategies)
        self._drops: list[Drop] = []
        self._withdrawals: list[Withdrawal] = []
        self._looks: list[Look] = []
        self._round = 0
        self._decided = True  # round 0 needs no decision
        self._trials = 0
        self.reason: str | None = None
        self._end_if_over()

    # --- state -------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.reason is not None

    @property
    def round(self) -> int:
        """The round in progress, or the last one run (0 before the first)."""
        return self._round

    @property
    def survivors(self) -> list[str]:
        """Strategies neither dropped nor withdrawn, in the order given."""
        return list(self._alive)

    @property
    def drops(self) -> list[Drop]:
        return list(self._drops)

    @property
    def withdrawals(self) -> list[Withdrawal]:
        return list(self._withdrawals)

    @property
    def looks(self) -> list[Look]:
        """The comparisons of each decided round from min_seeds on (with two or more survivors)."""
        return list(self._looks)

    @property
    def trials_used(self) -> int:
        """Trials the race asked for (a withdrawn strategy's failed trial counts)."""
        return self._trials

    @property
    def winner(self) -> str | None:
        """The one strategy left; None while the race runs or when it ended with several."""
        return self._alive[0] if self.reason == ONE_LEFT else None

    @property
    def leader(self) -> str | None:
        """The survivor with the best mean over the decided rounds (None before any)."""
        decided = self._round if self._decided else self._round - 1
        if not self._alive or decided < 1:
            return None
        means = np.round(self._scores[self._rows(self._alive), :decided].mean(axis=1), _TIE_DECIMALS)
        return self._alive[int(np.argmax(means))]

    def values(self) -> pd.DataFrame:
        """The values recorded, strategies x seeds of the rounds started (NaN where none)."""
        scores = self._scores[:, : self._round]
        raw = scores if self.mode == "max" else -scores
        columns = pd.Index(self.seeds[: self._round], name="seed")
        return pd.DataFrame(raw, index=pd.Index(self.strategies, name="strategy"), columns=columns)

    # --- running -----------------------------------------------------------------------------

    def next_round(self) -> list[tuple[str, int]]:
        """The (strategy, seed) trials of the round to run: a new round once the last one was
        decided, else the trials of the round in progress still missing; [] when finished."""
        if self.finished:
            return []
        if self._decided:
            self._round += 1
            self._decided = False
            self._trials += len(self._alive)
        seed = self.seeds[self._round - 1]
        column = self._round - 1
        return [(s, seed) for s in self._alive if np.isnan(self._scores[self._index(s), column])]

    def record(self, strategy: str, seed: int, value: float) -> None:
        """The value of a trial asked for by `next_round`; it must be finite (see `withdraw`)."""
        row = self._pending(strategy, seed)
        if not np.isfinite(value):
            raise ValueError(
                f"{strategy} seed {seed}: the value {value} is not finite; withdraw the strategy."
            )
        self._scores[row, self._round - 1] = value if self.mode == "max" else -value

    def withdraw(self, strategy: str, seed: int, reason: str) -> None:
        """Takes out a strategy whose trial of the round in progress gave no usable value (e.g. it
        failed); it is not tested, and counts as neither dropped nor winning."""
        self._pending(strategy, seed)
        self._alive.remove(strategy)
        self._withdrawals.append(Withdrawal(strategy, self._round, int(seed), reason))

    @property
    def round_complete(self) -> bool:
        """Whether every survivor has its value for the round in progress."""
        if self._decided:
            return False
        return not np.isnan(self._scores[self._rows(self._alive), self._round - 1]).any()

    def decide(self) -> list[Drop]:
        """Ends the round in progress: from round min_seeds on, drops the survivors significantly
        worse than the leader, then ends the race if it is over. Returns this round's drops."""
        if self.finished or self._decided:
            raise ValueError("There is no round in progress to decide; call next_round first.")
        if not self.round_complete:
            missing = ", ".join(s for s, _ in self.next_round())
            raise ValueError(f"Round {self._round} is incomplete: {missing} have no value yet.")
        self._decided = True
        dropped = self._test() if self._round >= self.design.min_seeds and len(self._alive) > 1 else []
        self._end_if_over()
        return dropped

    def stop(self, reason: str = BUDGET) -> None:
        """Ends the race now (e.g. its time ran out); a round in progress is not decided."""
        if not self.finished:
            self.reason = reason

    def _test(self) -> list[Drop]:
        leader = self.leader
        others = [s for s in self._alive if s != leader]
        n = self._round
        best = self._scores[self._index(leader), :n]
        rivals = self._scores[self._rows(others), :n]
        scale = np.maximum(np.abs(best).max(), np.abs(rivals).max(axis=1))
        p, tests = paired_p(best - rivals, scale)
        gaps = best.mean() - rivals.mean(axis=1)
        seeds = self.seeds[:n]
        self._looks.append(
            Look(
                n,
                seeds,
                leader,
                tuple(others),
                tuple(map(float, gaps)),
                tuple(map(float, p)),
                tuple(map(str, tests)),
            )
        )
        dropped = []
        for i in sorted(range(len(others)), key=lambda i: p[i]):  # stable: ties keep the given order
            threshold = self.design.threshold(len(self._drops))
            if not (p[i] <= threshold and gaps[i] > 0):
                break
            drop = Drop(others[i], n, seeds, leader, float(gaps[i]), float(p[i]), threshold, str(tests[i]))
            self._alive.remove(others[i])
            self._drops.append(drop)
            dropped.append(drop)
        return dropped

    def _end_if_over(self) -> None:
        if len(self._alive) <= 1:
            self.reason = ONE_LEFT if self._alive else NONE_LEFT
        elif self._round >= self.design.max_seeds:
            self.reason = UNDECIDED
        elif self._round >= len(self.seeds):
            self.reason = OUT_OF_SEEDS
        elif self.budget_trials is not None and self._trials + len(self._alive) > self.budget_trials:
            self.reason = BUDGET

    def _index(self, strategy: str) -> int:
        if strategy not in self._row:
            raise ValueError(f"{strategy} is not in the race ({', '.join(self.strategies)}).")
        return self._row[strategy]

    def _rows(self, strategies: Sequence[str]) -> list[int]:
        return [self._index(strategy) for strategy in strategies]

    def _pending(self, strategy: str, seed: int) -> int:
        """The row of a trial of the round in progress that has no value yet, or ValueError."""
        row = self._index(strategy)
        if self.finished:
            raise ValueError(
                f"{strategy} seed {seed} was not asked for: the race has finished ({self.reason})."
            )
        if self._decided:
            raise ValueError(f"{strategy} seed {seed} was not asked for: no round is in progress.")
        if strategy not in self._alive:
            raise ValueError(f"{strategy} is no longer in the race.")
        if int(seed) != self.seeds[self._round - 1]:
            raise ValueError(f"Round {self._round} runs seed {self.seeds[self._round - 1]}, not {seed}.")
        if not np.isnan(self._scores[row, self._round - 1]):
            raise ValueError(f"{strategy} seed {seed} already has a value.")
        return row

    # --- saving ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The race as JSON-ready values: what `from_dict` needs (the design, the values recorded,
        the withdrawals, how many rounds were decided, a stop) and what it concluded."""
        values = self.values()
        recorded = [
            [strategy, int(seed), float(values.at[strategy, seed])]
            for seed in values.columns
            for strategy in self.strategies
            if np.isfinite(values.at[strategy, seed])
        ]
        decided = self._round if self._decided else self._round - 1
        natural = self.reason if self.reason in (ONE_LEFT, NONE_LEFT, UNDECIDED, OUT_OF_SEEDS) else None
        return {
            "strategies": list(self.strategies),
            "mode": self.mode,
            "seeds": list(self.seeds),
            "budget_trials": self.budget_trials,
            "design": self.design.to_dict(),
            "values": recorded,
            "withdrawals": [asdict(w) for w in self._withdrawals],
            "rounds_decided": decided,
            "stopped": self.reason if self.finished and natural is None else None,
            "round": self._round,
            "finished": self.finished,
            "reason": self.reason,
            "winner": self.winner,
            "leader": self.leader,
            "survivors": self.survivors,
            "dropped": [drop.to_dict() for drop in self._drops],
            "looks": [look.to_dict() for look in self._looks],
            "trials_used": self._trials,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Race:
        """The race saved by `to_dict`, rebuilt by replaying its values round by round. Raises
        ValueError when the replay does not reach the saved drops (the record was altered)."""
        race = cls(
            data["strategies"],
            RaceDesign.from_dict(data["design"]),
            data["mode"],
            data["seeds"],
            data["budget_trials"],
        )
        try:
            for number in range(1, int(data["round"]) + 1):
                seed = race.seeds[number - 1]
                race.next_round()
                for withdrawal in data["withdrawals"]:
                    if withdrawal["round"] == number:
                        race.withdraw(withdrawal["strategy"], seed, withdrawal["reason"])
                for strategy, at, value in data["values"]:
                    if at == seed and strategy in race.survivors:
                        race.record(strategy, at, value)
                if number <= data["rounds_decided"]:
                    race.decide()
        except ValueError as error:
            raise ValueError(
                f"The saved race does not replay from its values ({error}): it was altered."
            ) from error
        if data["stopped"]:
            race.stop(data["stopped"])
        if [drop.to_dict() for drop in race.drops] != data["dropped"]:
            raise ValueError("The saved race's drops do not follow from its values: it was altered.")
        return race


def replay(
    values: pd.DataFrame, design: RaceDesign, mode: str = "max", budget_trials: int | None = None
) -> Race:
    """The race as it would have run on `values` (strategies x seeds, NaN where a trial gave no
    usable value): the seeds in ascending order, round r on the r-th smallest; a strategy missing
    the seed of a round is withdrawn then. Feeding a live race's values gives its decisions."""
    values = values.sort_index(axis=1)
    table = values.to_numpy(dtype=float)
    rows = {strategy: row for row, strategy in enumerate(values.index)}
    race = Race(list(values.index), design, mode, list(values.columns), budget_trials)
    while not race.finished:
        column = race.round  # the round about to start is column `round` (0-based)
        for strategy, seed in race.next_round():
            value = table[rows[strategy], column]
            if np.isfinite(value):
                race.record(strategy, seed, float(value))
            else:
                race.withdraw(strategy, seed, NO_VALUE)
        race.decide()
    return race


def first_drop_rounds(scores: np.ndarray, design: RaceDesign) -> np.ndarray:
    """For simulated races, vectorised: the round of each race's first drop (0 when it drops
    nothing by design.max_seeds). `scores` is races x strategies x seeds (higher is better, no
    NaN). Until its first drop a race keeps all its strategies and tests against the first-step
    threshold, so this is `Race`'s first decision, computed for many races at once: with all
    strategies equal, every drop is an error and the fraction of nonzero rounds is the race's
    family-wise error rate."""
    races, strategies, _ = scores.shape
    first = np.zeros(races, dtype=int)
    every = np.arange(races)
    for n in range(design.min_seeds, design.max_seeds + 1):
        seen = scores[:, :, :n]
        leaders = np.round(seen.mean(axis=2), _TIE_DECIMALS).argmax(axis=1)
        others = np.ones((races, strategies), dtype=bool)
        others[every, leaders] = False
        gaps = (seen[every, leaders][:, None, :] - seen)[others].reshape(races, strategies - 1, n)
        size = np.abs(seen).max(axis=2)  # the scale of each pair's values, as `Race` takes it
        scale = np.maximum(size[every, leaders][:, None], size[others].reshape(races, strategies - 1))
        p, _ = paired_p(gaps, scale)
        crossed = ((p <= design.threshold(0)) & (gaps.mean(axis=2) > 0)).any(axis=1)
        first[crossed & (first == 0)] = n
    return first

"""The search's early stopping decides the same whatever the order in which trials reach a rung, and
after an interruption and a restore: OrderedHalving driven through random schedules of a small cluster,
against ASHA's rule applied to the trials in creation order."""

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from sweep.stages.halving import RESULT_FILE, OrderedHalving, keeps, rungs

METRIC, MAX_T, SLOTS = "eval_accuracy", 4, 2
# Each trial's value after each epoch (ties included: 0.5 twice at the first rung).
CURVES = [
    [0.50, 0.52, 0.53, 0.54],
    [0.90, 0.91, 0.92, 0.93],
    [0.10, 0.20, 0.30, 0.40],
    [0.70, 0.40, 0.45, 0.50],
    [0.50, 0.60, 0.62, 0.64],
    [0.30, 0.90, 0.95, 0.97],
    [0.80, 0.30, 0.31, 0.32],
    [0.85, 0.95, 0.20, 0.99],
]


class FakeTrial:
    """What the scheduler reads of a Ray trial."""

    def __init__(self, number: int, folder: Path) -> None:
        self.trial_id = f"t{number:02d}"
        self.experiment_tag = f"{number}_lr=0.1"
        self.status = Trial.PENDING
        self.last_result: dict = {}
        self.local_path = str(folder / self.trial_id)
        self.path = self.local_path
        self.reported = 0  # epochs reported; the checkpoint is the last of them

    @property
    def has_reported_at_least_once(self) -> bool:
        return bool(self.last_result)

    def set_status(self, status: str) -> None:
        self.status = status


class FakeCluster:
    """Ray's controller as the scheduler sees it, running SLOTS trials at once and delivering their
    reports in an order drawn from `rng`."""

    def __init__(self, trials: list[FakeTrial], scheduler: OrderedHalving, rng: random.Random) -> None:
        self.trials, self.scheduler, self.rng = trials, scheduler, rng
        self.told: list[str] = []
        self.search_alg = SimpleNamespace(
            on_trial_complete=lambda trial_id, result=None: self.told.append(trial_id)
        )

    def get_trials(self) -> list[FakeTrial]:
        return self.trials

    def stop_trial(self, trial: FakeTrial) -> None:
        if trial.status in (Trial.PENDING, Trial.PAUSED):
            self.scheduler.on_trial_remove(self, trial)
        trial.status = Trial.TERMINATED

    def run(self, steps: int | None = None) -> None:
        """Run until every trial ended (or for `steps` reports, to be interrupted)."""
        running: list[FakeTrial] = [t for t in self.trials if t.status == Trial.RUNNING]
        while steps is None or steps > 0:
            while len(running) < SLOTS and (chosen := self.scheduler.choose_trial_to_run(self)):
                chosen.status = Trial.RUNNING
                running.append(chosen)
            if not running:
                break
            trial = self.rng.choice(running)
            trial.reported += 1
            result = {
                "training_iteration": trial.reported,
                METRIC: CURVES[self.trials.index(trial)][trial.reported - 1],
            }
            trial.last_result = result
            with Path(trial.local_path, RESULT_FILE).open("a") as log:
                log.write(json.dumps(result) + "\n")
            action = self.scheduler.on_trial_result(self, trial, result)
            if action == TrialScheduler.CONTINUE and trial.reported == MAX_T or action == TrialScheduler.STOP:
                trial.status = Trial.TERMINATED
                self.scheduler.on_trial_complete(self, trial, result)
            elif action == TrialScheduler.PAUSE:
                trial.status = Trial.PAUSED
            if trial.status != Trial.RUNNING:
                running.remove(trial)
            steps = None if steps is None else steps - 1


def new_scheduler() -> OrderedHalving:
    return OrderedHalving(METRIC, "max", MAX_T, grace_period=1, reduction_factor=2)


def make_trials(folder: Path) -> list[FakeTrial]:
    trials = [FakeTrial(number + 1, folder) for number in range(len(CURVES))]
    for trial in trials:
        Path(trial.local_path).mkdir(parents=True, exist_ok=True)
    return trials


def added(trials: list[FakeTrial], scheduler: OrderedHalving, rng: random.Random) -> FakeCluster:
    cluster = FakeCluster(trials, scheduler, rng)
    for trial in trials:
        scheduler.on_trial_add(cluster, trial)
    return cluster


def epochs_recorded(trials: list[FakeTrial]) -> list[int]:
    """How far each trial got, as the analysis reads it: the last epoch in its result.json (a trial
    restored from an older checkpoint repeats epochs; stopped at a rung, it ran to the rung)."""
    return [
        max(
            json.loads(line)["training_iteration"]
            for line in Path(t.local_path, RESULT_FILE).read_text().splitlines()
        )
        for t in trials
    ]


def in_creation_order() -> list[int]:
    """The epochs each trial runs when ASHA's rule compares it with the trials created before it."""
    reached = {rung: [] for rung in rungs(MAX_T, 1, 2)}
    epochs = []
    for curve in CURVES:
        ran = MAX_T
        for rung, earlier in reached.items():
            earlier.append(curve[rung - 1])
            if not keeps(curve[rung - 1], earlier[:-1], 2):
                ran = rung
                break
        epochs.append(ran)
    return epochs


def test_the_rule_is_asha_s_quantile_with_ties_kept() -> None:
    assert rungs(4, 1, 2) == [1, 2] and rungs(5, 3, 2) == [3] and rungs(9, 1, 3) == [1, 3]
    assert keeps(0.1, [], 2)  # the first trial at a rung is never stopped
    assert keeps(0.5, [0.5, 0.9, 0.1], 2) and not keeps(0.49, [0.5, 0.9, 0.1], 2)
    # By hand: at epoch 1 the medians of the earlier values stop trials 3, 5 and 6; at epoch 2,
    # among the trials left, the medians of [.52, .91] and [.52, .91, .40] stop trials 4 and 7.
    assert in_creation_order() == [4, 4, 1, 2, 1, 1, 2, 4]


@pytest.mark.parametrize("seed", range(40))
def test_decisions_do_not_depend_on_the_order_trials_report_in(seed: int, tmp_path: Path) -> None:
    scheduler = new_scheduler()
    trials = make_trials(tmp_path)
    cluster = added(trials, scheduler, random.Random(seed))
    cluster.run()
    assert [trial.reported for trial in trials] == epochs_recorded(trials) == in_creation_order()
    assert {trial.status for trial in trials} == {Trial.TERMINATED}
    stopped = {trial.trial_id for trial in trials if trial.reported < MAX_T}
    assert set(cluster.told) <= stopped  # a trial stopped while paused is told to the search with its result


@pytest.mark.parametrize("seed", range(40))
def test_decisions_survive_an_interruption_and_a_restore(seed: int, tmp_path: Path) -> None:
    """Stop the cluster after a random number of reports; restore as Ray does (a new scheduler, ended
    trials kept, the others pending from their last checkpoint, earlier reports in result.json). The
    saved state may lag behind the last report, so some trials repeat an epoch."""
    rng = random.Random(seed)
    first = new_scheduler()
    trials = make_trials(tmp_path)
    added(trials, first, rng).run(steps=rng.randrange(1, 14))

    second = new_scheduler()
    for trial in trials:
        if trial.status not in (Trial.TERMINATED, Trial.ERROR):
            trial.status = Trial.PENDING
            trial.reported -= min(trial.reported, rng.choice([0, 1]))
    added(trials, second, rng).run()
    assert epochs_recorded(trials) == in_creation_order()

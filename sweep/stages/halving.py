"""Early stopping of a search whose every decision depends on the trials' results alone: neither on the
order in which trials reach a rung nor on an interruption and `--resume`.

Ray's ASHA (`AsyncHyperBandScheduler`) stops a trial at a rung when its value is below the
(1 - 1/reduction_factor) quantile of the values that reached the rung before it, so a trial that
happens to get there first is never stopped, and after `Tuner.restore` ASHA starts with no values at
all (Ray does not save a scheduler's state). `OrderedHalving` applies the same rule with the same
rungs, but compares a trial with the trials created before it, in creation order: a trial that reaches
a rung before an earlier trial has is paused (Ray keeps its checkpoint) until that trial reaches the
rung or ends. The earliest unfinished trial never waits, so the search always moves. After a restore,
the values reported before are read back from each trial's result.json, and a trial that passed a rung
before the interruption waits for that rung's decision before it runs on.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.utils import flatten_dict

from analysis.results import creation_number

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"  # where Ray's JsonLoggerCallback writes each report of a trial, one per line


def rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The iterations at which trials are compared: grace_period, then reduction_factor times as many,
    and so on, before max_t (a trial at max_t has ended). ASHA's rungs with one bracket."""
    milestones, milestone = [], grace_period
    while milestone < max_t:
        milestones.append(milestone)
        milestone = math.ceil(milestone * reduction_factor)
    return milestones


def keeps(value: float, earlier: list[float], reduction_factor: float) -> bool:
    """ASHA's rule: a value (larger is better) goes on unless it is below the (1 - 1/reduction_factor)
    quantile of the earlier values at the same rung; with none earlier, it goes on."""
    if not earlier:
        return True
    return value >= np.nanpercentile(earlier, (1 - 1 / reduction_factor) * 100)


class OrderedHalving(FIFOScheduler):
    """Successive halving on `metric` (see the module's docstring), with ASHA's rungs and rule."""

    # Each result is seen as it is reported: a buffered one could carry a trial past its rung.
    _supports_buffered_results = False

    def __init__(
        self,
        metric: str,
        mode: str,
        max_t: int,
        grace_period: int,
        reduction_factor: float,
        time_attr: str = "training_iteration",
    ) -> None:
        super().__init__()
        self._metric, self.mode, self.time_attr = metric, mode, time_attr
        self.sign = 1.0 if mode == "max" else -1.0
        self.rungs = rungs(max_t, grace_period, reduction_factor)
        self.reduction_factor = reduction_factor
        self.trials: dict[str, Trial] = {}
        self.number: dict[str, int] = {}
        self.values: dict[str, dict[int, float]] = {}  # trial -> rung -> signed value
        self.waiting: dict[str, int] = {}  # paused trials -> the rung they wait at
        self.resuming: set[str] = set()  # paused trials that go on once Ray resumes them
        self.stopped: set[str] = set()  # trials stopped at a rung
        self.settling = False

    # --- what Ray calls ------------------------------------------------------------------------

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        """Number the trial; a restored one gets back the rung values it reported, and if it passed a
        rung, waits (paused) for that rung's decision before it runs on."""
        self.trials[trial.trial_id] = trial
        self.number[trial.trial_id] = creation_number(trial)
        reported = self._reported(trial)
        self.values[trial.trial_id] = reported
        if trial.status == Trial.PENDING and reported:
            trial.set_status(Trial.PAUSED)  # read by add_trial right after this call
            self.waiting[trial.trial_id] = min(reported)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        self.resuming.discard(trial.trial_id)  # it runs: it was resumed, if it was waiting
        iteration, value = result.get(self.time_attr), result.get(self._metric)
        if iteration not in self.rungs or not isinstance(value, (int, float)):
            return TrialScheduler.CONTINUE
        self.values[trial.trial_id][iteration] = self.sign * float(value)
        decision = self._decide(trial.trial_id, iteration)
        if decision is None:
            self.waiting[trial.trial_id] = iteration
            action = TrialScheduler.PAUSE
        else:
            action = TrialScheduler.CONTINUE if decision else self._stop_here(trial)
        self._settle(tune_controller, besides=trial.trial_id)
        return action

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self._settle(tune_controller, besides=trial.trial_id)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self.waiting.pop(trial.trial_id, None)
        self._settle(tune_controller, besides=trial.trial_id)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self.waiting.pop(trial.trial_id, None)
        self._settle(tune_controller, besides=trial.trial_id)

    def choose_trial_to_run(self, tune_controller) -> Trial | None:
        """Pending trials first, in Ray's order; then a paused trial whose rung let it go on."""
        self._settle(tune_controller)
        for trial in tune_controller.get_trials():
            if trial.status == Trial.PENDING:
                return trial
        for trial_id in sorted(self.resuming, key=self.number.__getitem__):
            if self.trials[trial_id].status == Trial.PAUSED:
                return self.trials[trial_id]
        self.resuming = {t for t in self.resuming if self.trials[t].status == Trial.PAUSED}
        return None

    def debug_string(self) -> str:
        return f"OrderedHalving: rungs {self.rungs}, {len(self.stopped)} stopped, {len(self.waiting)} waiting"

    # --- the rule --------------------------------------------------------------------------------

    def _decide(self, trial_id: str, rung: int) -> bool | None:
        """Whether the trial goes on past `rung`; None while an earlier trial has neither reached the
        rung nor ended."""
        earlier = []
        for other, number in self.number.items():
            if number >= self.number[trial_id]:
                continue
            if rung in self.values[other]:
                earlier.append(self.values[other][rung])
            elif not self._ended(other):
                return None
        return keeps(self.values[trial_id][rung], earlier, self.reduction_factor)

    def _ended(self, trial_id: str) -> bool:
        return trial_id in self.stopped or self.trials[trial_id].status in (Trial.TERMINATED, Trial.ERROR)

    def _stop_here(self, trial: Trial) -> str:
        self.stopped.add(trial.trial_id)
        return TrialScheduler.STOP

    def _settle(self, tune_controller, besides: str | None = None) -> None:
        """Decide every waiting trial that can be decided now (earliest first, as a stop at one rung
        can settle a later trial's wait): resume the ones that go on, stop the others. A trial stopped
        while paused is told to the search algorithm with its value at the rung, as Ray tells it of a
        trial stopped as it reports."""
        if self.settling:  # stopping a trial calls back into on_trial_remove
            return
        self.settling, settled = True, True
        try:
            while settled:
                settled = False
                for trial_id in sorted(self.waiting, key=self.number.__getitem__):
                    rung = self.waiting[trial_id]
                    decision = None if trial_id == besides else self._decide(trial_id, rung)
                    if decision is None:
                        continue
                    settled = True
                    self._apply(tune_controller, trial_id, rung, decision)
                    break
        finally:
            self.settling = False

    def _apply(self, tune_controller, trial_id: str, rung: int, goes_on: bool) -> None:
        """A waiting trial's decision: on to its next rung reported before a restore (if any), on to
        run, or stopped."""
        del self.waiting[trial_id]
        trial = self.trials[trial_id]
        if goes_on:
            passed = [later for later in self.values[trial_id] if later > rung]
            if passed:
                self.waiting[trial_id] = min(passed)
            else:
                self.resuming.add(trial_id)
            return
        self.stopped.add(trial_id)
        at_rung = {self.time_attr: rung, self._metric: self.sign * self.values[trial_id][rung]}
        tune_controller.search_alg.on_trial_complete(
            trial_id, result={**flatten_dict(trial.last_result), **at_rung}
        )
        tune_controller.stop_trial(trial)

    # --- a restored trial's past -------------------------------------------------------------------

    def _reported(self, trial: Trial) -> dict[int, float]:
        """The signed rung values a trial reported before a restore, from its result.json (empty for a
        new trial, or when the file cannot be read: the trial reports them again as it reruns)."""
        values: dict[int, float] = {}
        if not trial.has_reported_at_least_once:  # a new trial (which has no folder yet)
            return values
        for folder in (trial.local_path, trial.path):
            path = Path(folder or "", RESULT_FILE)
            if not folder or not path.is_file():
                continue
            for line in path.read_text(errors="replace").splitlines():
                try:
                    report = json.loads(line)
                except ValueError:  # a line cut off by a crash or a full disk
                    continue
                iteration, value = report.get(self.time_attr), report.get(self._metric)
                if iteration in self.rungs and isinstance(value, (int, float)):
                    values[iteration] = self.sign * float(value)
            break
        return values

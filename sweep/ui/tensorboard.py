"""TensorBoard for a study: Ray's per-epoch scalars, and an HParams row for every trial.

Ray's TBXLoggerCallback logs each reported metric per epoch under `ray/tune/<metric>`, but fills the
HParams view only with the sampled parameters. Here every trial shows the same columns (strategy,
temperature, loss weights, lr, seed, ...) beside its final metrics, whichever stage ran it and
whether a value was searched or fixed.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback
from ray.tune.logger.tensorboardx import VALID_SUMMARY_TYPES
from ray.tune.utils import flatten_dict
from tensorboardX.summary import hparams

from trainables.vocabulary import SEARCHED, slug

HPARAMS = ("strategy", "setting", *SEARCHED, "seed", "student_layers", "epochs", "batch_size")


class StudyTBXLogger(TBXLoggerCallback):
    """TBXLoggerCallback whose HParams are the trial's study settings, not only the sampled ones, for
    every trial: Ray's writes them only for trials with sampled parameters, and a replicate trial
    (a point to evaluate) has none."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        if trial in self._trial_writer:
            if self._trial_result[trial]:
                flat = flatten_dict(self._trial_result[trial], delimiter="/")
                summary_types = tuple(VALID_SUMMARY_TYPES)
                self._try_log_hparams(trial, {k: v for k, v in flat.items() if isinstance(v, summary_types)})
            self._trial_writer[trial].close()
            del self._trial_writer[trial]
            del self._trial_result[trial]

    def _try_log_hparams(self, trial: Trial, result: dict) -> None:
        params = {key: trial.config[key] for key in HPARAMS if key in trial.config}
        params = {key: value for key, value in params.items() if isinstance(value, (str, bool, int, float))}
        experiment, start, end = hparams(hparam_dict=params, metric_dict=result)
        writer = self._trial_writer[trial].file_writer
        for summary in (experiment, start, end):
            writer.add_summary(summary)


def trial_dirname(trial: Trial) -> str:
    """Trial folders (and TensorBoard run names) that say what the trial is: id_strategy_seed."""
    config = trial.config
    return f"{trial.trial_id}_{slug(str(config.get('strategy', 'trial')))}_seed{config.get('seed', 0)}"

"""TensorBoard for a study: Ray's per-epoch scalars, and an HParams row for every trial.

Ray's TBXLoggerCallback logs each reported metric per epoch under `ray/tune/<metric>`, but fills the
HParams view only with the sampled parameters. Here every trial shows the same columns (strategy,
temperature, loss weights, lr, seed, ...) beside its final metrics, whichever stage ran it and
whether a value was searched or fixed.
"""

from __future__ import annotations

from ray.tune.experiment import Trial
from ray.tune.logger import TBXLoggerCallback
from tensorboardX.summary import hparams

from trainables.vocabulary import SEARCHED, slug

HPARAMS = ("strategy", "setting", *SEARCHED, "seed", "student_layers", "epochs", "batch_size")


class StudyTBXLogger(TBXLoggerCallback):
    """TBXLoggerCallback whose HParams are the trial's study settings, not only the sampled ones."""

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

"""A finished (or interrupted) stage read back from Ray's experiment folder.

One row per trial goes to `<stage>/trials.csv`: identity, status, the error of a failed trial, the
last reported metrics and the config flattened as `config/<key>` (nested keys joined with "/").
This is the per-trial CSV the analysis ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sweep.config import SEARCHED

TERMINATED, ERROR = "TERMINATED", "ERROR"
TRIALS_CSV = "trials.csv"
# Ray's bookkeeping, left out of the per-trial table.
_DROP = {"config", "trial_id", "pid", "hostname", "node_ip", "date", "timestamp", "checkpoint_dir_name"}


@dataclass
class StageResults:
    stage: str
    path: str
    trials: list

    @property
    def unfinished(self) -> list:
        """Trials neither finished nor failed: the stage was interrupted."""
        return [t for t in self.trials if t.status not in (TERMINATED, ERROR)]

    def finished(self, metric: str) -> list:
        return [t for t in self.trials if t.status == TERMINATED and _number(t.last_result.get(metric))]


def load_stage(path: str, stage: str) -> StageResults:
    from ray.tune import ExperimentAnalysis

    return StageResults(stage=stage, path=path, trials=list(ExperimentAnalysis(path).trials))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def trial_rows(results: StageResults) -> list[dict]:
    return [_row(trial) for trial in results.trials]


def _row(trial) -> dict:
    config = trial.config
    metrics = {k: v for k, v in trial.last_result.items() if k not in _DROP}
    flat = pd.json_normalize(config, sep="/").iloc[0].to_dict() if config else {}
    return {
        "trial_id": trial.trial_id,
        "strategy": config.get("strategy"),
        "seed": config.get("seed"),
        "status": trial.status,
        "error": error_line(trial) if trial.status == ERROR else "",
        "epochs": metrics.get("epoch", 0),
        "teacher_layers": metrics.get("teacher_layers", ""),
        **{k: v for k, v in metrics.items() if k not in ("strategy", "seed", "teacher_layers")},
        **{f"config/{key}": _plain(value) for key, value in flat.items()},
    }


def _plain(value):
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def error_line(trial) -> str:
    """The failure's last meaningful line, e.g. 'NonFiniteLossError: the training loss became nan ...'."""
    text = str(trial.get_error() or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0]]
    return (named or lines or ["failed"])[-1][:300]


def write_trials_csv(results: StageResults, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TRIALS_CSV
    pd.DataFrame(trial_rows(results)).to_csv(path, index=False)
    return path


def best_hyperparameters(
    results: StageResults, strategies: list[str], metric: str, mode: str, fallback: dict[str, dict]
) -> tuple[dict[str, dict], dict[str, str]]:
    """Each strategy's best search trial's hyper-parameters, and where each came from.

    Trials that ran more epochs (not stopped early by ASHA) rank first, then by the metric. A
    strategy with no finished trial keeps the fixed settings.
    """
    sign = 1 if mode == "max" else -1
    chosen, sources = {}, {}
    for strategy in strategies:
        trials = [t for t in results.finished(metric) if t.config.get("strategy") == strategy]
        if not trials:
            chosen[strategy], sources[strategy] = fallback[strategy], "fixed (no finished search trial)"
            continue
        best = max(trials, key=lambda t: (t.last_result.get("epoch", 0), sign * t.last_result[metric]))
        chosen[strategy] = {name: best.config[name] for name in SEARCHED}
        sources[strategy] = f"search trial {best.trial_id} ({metric} {best.last_result[metric]:.4f})"
    return chosen, sources


def best_trial(results: StageResults, metric: str, mode: str):
    """The finished trial with the best final value of the metric, or None."""
    trials = results.finished(metric)
    if not trials:
        return None
    sign = 1 if mode == "max" else -1
    return max(trials, key=lambda t: sign * t.last_result[metric])

"""The teacher stage: everything about the teacher that the trials would otherwise each redo, once.

It fine-tunes (or loads) the teacher, then on the students' data: scores it, computes each metric's
baseline on each scored split (the score of a constant predictor), hashes its weights, chooses the
layers of the data-driven strategies, scores each copied student before training, and caches the
teacher's outputs on the students' training rows. It runs as one Ray task, so on a
cluster it gets a GPU like a trial would, and its messages stream to the driver's console. The record,
the study layout's `teacher_record`, is what trials and the dry run read; a resumed study reuses it,
and so does a later part of a study that loads an earlier part's teacher (see `earlier_record`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import ray

from sweep.config.stored import stored_study
from sweep.config.study import StudyConfig
from sweep.config.trial import teacher_config, trial_config
from sweep.plan.warnings import same_layer_warnings
from sweep.preflight.checks import Preflight
from sweep.ui.console import run_with_output, sending_lines
from trainables import loop
from trainables.data import task_baselines
from trainables.distill import initial_scores, prepare
from trainables.errors import ConfigError
from trainables.strategies.data_driven import calibration_rows, choose_layers
from trainables.strategies.registry import get_strategy, is_data_driven
from trainables.tasks import task_name
from trainables.teacher import finetune_teacher, label_order_note, majority_accuracy, weights_hash
from trainables.vocabulary import COLLAPSED, EVAL, StudyLayout, scored
from trainables.worker_cache import worker_cache

log = logging.getLogger(__name__)


def read_record(config: StudyConfig) -> dict | None:
    """This study's teacher record, if its teacher stage has run. The teacher it fine-tuned is the one
    in this study's folder, also when the folder was copied or moved since (the record names the
    folder it was made in)."""
    layout = config.layout
    if not layout.teacher_record.is_file():
        return None
    record = json.loads(layout.teacher_record.read_text())
    made = Path(record["path"])
    own = made.parts[-2:] == layout.teacher_model.relative_to(layout.root).parts
    if record.get("finetuned") and own and made != layout.teacher_model and layout.teacher_model.is_dir():
        record["path"] = str(layout.teacher_model)
    return record


def known_record(config: StudyConfig, preflight: Preflight) -> dict | None:
    """The record a plan can show before the study runs: this study's own, else the one it will take
    from the study that made its teacher."""
    return read_record(config) or earlier_record(config, preflight, quiet=True)


def teacher_stage(config: StudyConfig, preflight: Preflight, cpus: float, gpus: float) -> dict:
    """The study's teacher record: computed once, then read back."""
    info = read_record(config)
    if info is not None:
        log.info(f"Teacher stage: reusing {info['path']} ({_main(info)}).")
        return info
    info = earlier_record(config, preflight)
    if info is not None:
        _write_record(config, info)
        log.info(f"Teacher stage: reusing the record of {info['reused_from']} ({_main(info)}).")
        return info
    action = "Fine-tuning" if preflight.finetune else "Loading and scoring"
    log.info(f"Teacher stage: {action} {config.teacher.base} on {task_name(config.data.task)} ...")
    started = time.perf_counter()
    task = ray.remote(num_cpus=cpus, num_gpus=gpus)(sending_lines)
    out_dir = str(config.layout.teacher_model)
    info = run_with_output(task, prepare_teacher, config, preflight.finetune, out_dir, preflight.layers)
    info["seconds"] = round(time.perf_counter() - started, 1)
    _write_record(config, info)
    log.info(f"Teacher stage: {info['path']} ({_main(info, with_baselines=False)}); {info['seconds']} s.")
    for warning in teacher_warnings(info):
        log.warning(warning)
    return info


def _write_record(config: StudyConfig, info: dict) -> None:
    path = config.layout.teacher_record
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))


def stage_inputs(config: StudyConfig) -> dict:
    """What a record depends on besides the teacher's weights: the students' data and depth, the
    rows that choose layers, and the number format and batch of the scoring."""
    return {
        "data": asdict(config.data),
        "student_layers": config.trial.student_layers,
        "calibration_size": config.teacher.calibration_size,
        "precision": config.trial.precision,
        "eval_batch_size": config.trial.eval_batch_size,
    }


def earlier_record(config: StudyConfig, preflight: Preflight, quiet: bool = False) -> dict | None:
    """The record of the study that fine-tuned this teacher, when this study loads its
    `<study>/teacher/model` and would compute the same: same weights (hash), same `stage_inputs`
    (from that study's study.yaml), and every strategy of this study recorded there. A study run in
    parts by seeds then shares one teacher stage, data-driven choices included. Unless `quiet`, says
    why a record beside the teacher is not taken."""
    base = Path(config.teacher.base).expanduser()
    path = base.parent / StudyLayout.TEACHER_RECORD
    if preflight.finetune or base.name != StudyLayout.TEACHER_MODEL or not path.is_file():
        return None
    record = json.loads(path.read_text())
    try:
        same_inputs = stage_inputs(stored_study(base.parent.parent)) == stage_inputs(config)
    except ConfigError:
        same_inputs = False
    same = (
        same_inputs
        and record.get("path") == str(base.resolve())
        and set(config.strategies) <= set(record.get("strategies", {}))
        and record.get("teacher_hash") == weights_hash(str(base))
    )
    if not same:
        if not quiet:
            log.info(f"Teacher stage: {path} was made for other data, students or weights; not reused.")
        return None
    strategies = {s: record["strategies"][s] for s in config.strategies}
    return {**record, "strategies": strategies, "reused_from": str(path.resolve())}


def _main(info: dict, with_baselines: bool = True) -> str:
    """E.g. "validation f1 0.8320, baseline 0.8120"; without `with_baselines` (the plan showed them) or for
    a record without them (older), "validation f1 0.8320"."""
    baselines = info.get("baselines", {}) if with_baselines else {}

    def shown(name: str, value: float) -> str:
        baseline = baselines.get(scored(EVAL, name))
        against = f", baseline {baseline:.4f}" if baseline is not None else ""
        return f"validation {name} {value:.4f}{against}"

    return ", ".join(shown(name, value) for name, value in info["scores"].items())


def teacher_warnings(info: dict) -> list[str]:
    """The label note, a teacher no better than the constant predictor on the main metric, a teacher
    that predicts one class for every validation row, and repeated layer choices."""
    warnings = [info["label_note"]] if info.get("label_note") else []
    name, score = next(iter(info["scores"].items()))
    baseline = info.get("baselines", {}).get(scored(EVAL, name))
    if info.get(scored(EVAL, COLLAPSED)):
        warnings.append(
            "the teacher predicts the same class for every validation row (or a near-constant score): "
            "its students can only learn to do the same. Check the teacher settings and the labels."
        )
    elif baseline is not None and score <= baseline + 0.01:
        warnings.append(
            f"the teacher's validation {name} ({score:.4f}) is no better than always predicting the "
            f"training set's most common class or mean ({baseline:.4f}); its students will learn little. "
            f"Check the teacher settings."
        )
    return warnings + chosen_repeats(info.get("strategies", {}))


def chosen_repeats(strategies: dict[str, dict]) -> list[str]:
    """The dry run warns about strategies that copy the same layers; a data-driven one's layers are
    known only now, so the same warning is given here for the groups that hold one."""
    layers = {strategy: record["layers"] for strategy, record in strategies.items()}
    return same_layer_warnings(layers, among={s for s in strategies if is_data_driven(s)})


def prepare_teacher(config: StudyConfig, finetune: bool, out_dir: str, layers: dict) -> dict:
    """Runs in a Ray worker: fine-tune the base into `out_dir` (or take it as it is), then everything
    the trials need from the teacher (see the module's docstring)."""
    path, history = config.teacher.base, []
    if finetune:
        history = finetune_teacher(teacher_config(config, path), out_dir)["history"]
        path = out_dir
    path = str(Path(path).expanduser().resolve()) if Path(path).expanduser().is_dir() else path
    cache = worker_cache(path, config.data, "auto", config.teacher.trust_remote_code)
    scores = loop.score_splits(cache.teacher, cache.data, cache.task, cache.tokenizer, cache.device, None)
    if config.trial.teacher_cache and cache.is_local:
        for with_hidden in cache_variants(config):
            cache.teacher_outputs(with_hidden, config.trial.cache_memory_mb * 1024**2)
    return {
        "path": path,
        "base": config.teacher.base,
        "task": task_name(config.data.task),
        "finetuned": finetune,
        "teacher_hash": cache.teacher_hash,
        "scores": {name: scores[scored(EVAL, name)] for name in cache.task.metrics},
        **scores,
        "baselines": task_baselines(config.data, cache.data),
        "majority_accuracy": majority_accuracy(cache.data, cache.task),
        "label_note": label_order_note(cache.teacher, cache.task),
        "history": history,
        "strategies": {s: _strategy(config, cache, s, layers[s]) for s in config.strategies},
    }


def _strategy(config: StudyConfig, cache, strategy: str, layers: list[int] | None) -> dict:
    """A strategy's teacher layers (chosen from data for auto:...) and its untrained student's
    scores (none for scratch, whose initial student depends on the seed)."""
    record: dict = {}
    if layers is None:
        rows = calibration_rows(cache.data.train, config.teacher.calibration_size, config.data.data_seed)
        log.info(f"Teacher stage: choosing the layers of {strategy} on {len(rows)} training rows ...")
        dtype = loop.autocast_dtype(config.trial.precision, cache.device)
        choice = choose_layers(
            strategy, cache.teacher, rows, cache.tokenizer, config.trial.student_layers, cache.task, dtype
        )
        layers = choice.layers
        record = {
            "scores": choice.scores,
            "score_name": get_strategy(strategy).score,
            "steps": choice.steps,
            "seconds": round(choice.seconds, 2),
        }
        log.info(f"Teacher stage: {strategy} keeps teacher layers {layers} ({choice.seconds:.1f} s).")
    init = {}
    if layers:
        settings = trial_config(config, cache.path, strategy, teacher_layers=layers, teacher_cache=False)
        init = initial_scores(prepare(settings))
    return {"layers": layers, "init": init, **record}


def cache_variants(config: StudyConfig) -> list[bool]:
    """Which teacher caches trials will read: with hidden states when any trial may use the cosine
    term, logits only when a fixed-setting trial turns it off."""
    fixed_cos = config.trial.alpha_cos > 0
    cos_range = config.search.space.get("alpha_cos")
    searched = "search" in config.stages and cos_range is not None and cos_range.max > 0
    return sorted({fixed_cos, True} if fixed_cos or searched else {False})

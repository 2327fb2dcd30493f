"""One trial: build a layer-initialised student from the teacher and distil it.

`distill_trial` is the Ray Tune function trainable; `run_trial` is the same loop in plain Python.
The order of work is fixed: check settings, take the teacher and data (kept from the worker's last
trial when they are the same), build a fresh student, note its scores before training, then train
and evaluate each epoch (or every `eval_every`-th and the last), checkpointing after every one.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from trainables import loop, vocabulary
from trainables.blocks import last_block_output
from trainables.config import TrialConfig
from trainables.data import task_baselines
from trainables.dropout import use_fast_dropout
from trainables.losses import distillation_loss
from trainables.reporting import LocalReporter, Reporter, TuneReporter
from trainables.strategies.registry import check_layers, select_layers
from trainables.student import build_student
from trainables.teacher_cache import TeacherOutputs
from trainables.worker_cache import WorkerCache, release_trial_memory, worker_cache


class InjectedFault(RuntimeError):
    """Raised by the `crash:<step>` fault switch, to test recovery from checkpoints."""


def distill_trial(config: dict) -> None:
    """Ray Tune function trainable; the worker it runs in may be handed the next trial."""
    try:
        run_trial(TrialConfig.from_dict(config), TuneReporter())
    finally:
        release_trial_memory()


@dataclass
class Setup:
    """Everything a trial builds or takes before its first step."""

    config: TrialConfig
    layers: list[int]
    cache: WorkerCache
    student: PreTrainedModel
    dtype: torch.dtype | None  # the student's autocast dtype; None for fp32
    cached: TeacherOutputs | None  # the teacher's training-set outputs, when the cache is on

    @property
    def teacher(self) -> PreTrainedModel:
        return self.cache.teacher

    @property
    def data(self):
        return self.cache.data

    @property
    def tokenizer(self):
        return self.cache.tokenizer

    @property
    def device(self) -> torch.device:
        return self.cache.device


def run_trial(config: TrialConfig, reporter: Reporter | None = None) -> list[dict]:
    """Run a trial to its end, resuming from the reporter's checkpoint if it has one.

    Returns the metrics reported by this run, one dict per epoch.
    """
    reporter = reporter or LocalReporter(tempfile.mkdtemp(prefix="trial-"))
    try:
        return _run(prepare(config), reporter)
    finally:
        reporter.close()


def _run(setup: Setup, reporter: Reporter) -> list[dict]:
    config = setup.config
    steps_per_epoch = -(-len(setup.data.train) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        setup.student, config.lr, config.weight_decay, config.epochs * steps_per_epoch, config.warmup_ratio
    )
    state = reporter.restore()
    if state is None:
        constants, first_epoch = trial_constants(setup), 0
    else:
        setup.student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loop.set_rng_state(state["rng"])
        constants, first_epoch = state["constants"], state["epoch"]

    reported = []
    for epoch in range(first_epoch, config.epochs):
        first_step = epoch * steps_per_epoch

        def on_step(step: int, values: dict, seconds: dict, first_step: int = first_step) -> None:
            reporter.step(
                first_step + step + 1, {**values, "learning_rate": scheduler.get_last_lr()[0]}, seconds
            )

        train = loop.train_epoch(
            setup.student,
            epoch_batches(setup, epoch),
            step_loss(setup, first_step, resumed=state is not None),
            optimizer,
            scheduler,
            config.max_grad_norm,
            setup.device,
            setup.dtype,
            on_step,
        )
        epoch_metrics = {
            **constants,
            vocabulary.EPOCH: epoch + 1,
            **_train_metrics(train),
            vocabulary.LEARNING_RATE: scheduler.get_last_lr()[0],
        }
        if config.scores_epoch(epoch + 1):
            last = epoch + 1 == config.epochs
            epoch_metrics |= _scores(setup, setup.student, setup.dtype, with_test=last)
        checkpoint = {
            "epoch": epoch + 1,
            "student": setup.student.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": loop.rng_state(),
            "constants": constants,
        }
        reporter.report(epoch_metrics, checkpoint)
        reported.append(epoch_metrics)
    return reported


def prepare(config: TrialConfig) -> Setup:
    """Check settings, take the teacher and data, and build a fresh student; no training yet."""
    config.validate()
    cache = worker_cache(config.teacher, config.data, config.device, config.trust_remote_code)
    depth = cache.teacher.config.num_hidden_layers
    if config.teacher_layers is None:
        layers = select_layers(config.strategy, depth, config.student_layers)
    else:
        layers = check_layers(config.teacher_layers, depth, config.student_layers, config.strategy)
    cached = None
    if config.teacher_cache and cache.is_local:
        cached = cache.teacher_outputs(config.alpha_cos > 0, config.cache_memory_mb * 1024**2)
    loop.seed_everything(config.seed)  # after the cache, which a first trial builds and later ones load
    student = build_student(cache.teacher, layers, num_layers=config.student_layers).to(cache.device)
    if cache.device.type == "cpu":  # CUDA's dropout and attention kernels are fused already
        use_fast_dropout(student)
    dtype = loop.autocast_dtype(config.precision, cache.device)
    return Setup(config, layers, cache, student, dtype, cached)


def trial_constants(setup: Setup) -> dict:
    """Metrics fixed for the whole trial: what it is, the scores of the student before training and
    of the teacher (as the study measured them, else measured here), and each score's baseline (the
    constant predictor's, `trainables.data.task_baselines`)."""
    config = setup.config
    init = config.init_scores or _main_scores(setup, setup.student, setup.dtype)
    teacher = config.teacher_scores or _main_scores(setup, setup.teacher, None)
    baselines = task_baselines(config.data, setup.data)
    return {
        vocabulary.STRATEGY: config.strategy,
        vocabulary.SEED: config.seed,
        vocabulary.TEACHER_LAYERS: ",".join(map(str, setup.layers)),
        vocabulary.TEACHER_HASH: setup.cache.teacher_hash,
        vocabulary.STUDENT_PARAMS: sum(p.numel() for p in setup.student.parameters()),
        **{vocabulary.scored(vocabulary.INIT, name): value for name, value in init.items()},
        **{vocabulary.scored(vocabulary.TEACHER, name): value for name, value in teacher.items()},
        **{vocabulary.baseline_of(name): value for name, value in baselines.items()},
    }


def initial_scores(setup: Setup) -> dict[str, float]:
    """The untrained student's scores on the primary validation set (metric -> value)."""
    return _main_scores(setup, setup.student, setup.dtype)


def _main_scores(setup: Setup, model: PreTrainedModel, dtype: torch.dtype | None) -> dict[str, float]:
    batches = loop.make_loader(
        setup.data.validation, setup.tokenizer, setup.config.eval_batch_size, setup.device
    )
    scores = loop.evaluate(model, batches, setup.device, setup.cache.task, dtype)
    return {name: scores[name] for name in setup.cache.task.metrics}


def _scores(setup: Setup, model: PreTrainedModel, dtype: torch.dtype | None, with_test: bool) -> dict:
    cache = setup.cache
    return loop.score_splits(
        model,
        cache.data,
        cache.task,
        cache.tokenizer,
        cache.device,
        dtype,
        setup.config.eval_batch_size,
        with_test,
    )


def epoch_batches(setup: Setup, epoch: int):
    """The training batches of `epoch` (0-based), in the order its seed fixes."""
    config = setup.config
    return loop.make_loader(
        setup.data.train,
        setup.tokenizer,
        config.batch_size,
        setup.device,
        order_seed(config, epoch),
        config.group_by_length,
    )


def order_seed(config: TrialConfig, epoch: int) -> int:
    """The epoch's shuffling seed: a function of seed and epoch alone, the same for every strategy."""
    return config.seed * 100_003 + epoch


def step_loss(setup: Setup, first_step: int = 0, resumed: bool = False) -> loop.StepLoss:
    """The distillation loss of one batch, counting steps from `first_step` (for the fault switches)."""
    config, student = setup.config, setup.student
    need_hidden = config.alpha_cos > 0
    teacher_outputs = _teacher_outputs(setup)
    crash_at = None if resumed else config.fault_step("crash")
    full_at = None if resumed else config.fault_step("full")
    nan_at = config.fault_step("nan")
    step = first_step

    def step_loss(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        nonlocal step
        if step == crash_at:
            raise InjectedFault(f"injected crash at step {step} (fault={config.fault!r})")
        if step == full_at:
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (injected at step {step})")
        inputs = loop.model_inputs(batch)
        teacher_logits, teacher_hidden = teacher_outputs(batch)
        hidden = None
        if need_hidden:
            student_out, student_hidden = last_block_output(student, inputs)
            hidden = (student_hidden, teacher_hidden, batch["attention_mask"])
        else:
            student_out = student(**inputs)
        terms = distillation_loss(
            student_out.logits,
            teacher_logits,
            batch["labels"],
            config.loss_weights,
            config.temperature,
            hidden,
            setup.cache.task.regression,
        )
        if step == nan_at:
            terms["loss"] = terms["loss"] * float("nan")
        step += 1
        return terms

    return step_loss


def _teacher_outputs(setup: Setup):
    """Teacher logits and last hidden states (its last block's output) for a batch, in fp32: from the
    cache, or run live."""
    need_hidden = setup.config.alpha_cos > 0

    def from_cache(batch: dict[str, torch.Tensor]):
        return setup.cached.batch(batch["example_index"], batch["attention_mask"], setup.device)

    @torch.no_grad()
    def live(batch: dict[str, torch.Tensor]):
        with loop.full_precision(setup.device):
            if need_hidden:
                out, hidden = last_block_output(setup.teacher, loop.model_inputs(batch))
                return out.logits, hidden
            return setup.teacher(**loop.model_inputs(batch)).logits, None

    return live if setup.cached is None else from_cache


def _train_metrics(train: dict[str, float]) -> dict[str, float]:
    return {
        vocabulary.TRAIN_LOSS: train["loss"],
        vocabulary.TRAIN_LOSS_CE: train["ce"],
        vocabulary.TRAIN_LOSS_KD: train["kd"],
        vocabulary.TRAIN_LOSS_COS: train["cos"],
        vocabulary.EXAMPLES_PER_SECOND: train["examples_per_second"],
    }

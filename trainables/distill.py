"""One trial: build a layer-initialised student from the teacher and distil it.

`distill_trial` is the Ray Tune function trainable; `run_trial` is the same loop in plain Python.
The order of work is fixed: check settings, load, build, evaluate the untouched student
(`init_accuracy`), then train and evaluate each epoch, checkpointing after every one.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainables import loop, metrics
from trainables.config import TrialConfig
from trainables.data import TaskData, load_task_data
from trainables.layers import select_layers
from trainables.losses import distillation_loss
from trainables.reporting import LocalReporter, Reporter, TuneReporter
from trainables.student import build_student
from trainables.teacher import load_teacher
from trainables.teacher_cache import TeacherOutputs, load_or_build


class InjectedFault(RuntimeError):
    """Raised by the `crash:<step>` fault switch, to test recovery from checkpoints."""


def distill_trial(config: dict) -> None:
    """Ray Tune function trainable."""
    run_trial(TrialConfig.from_dict(config), TuneReporter())


@dataclass
class Setup:
    """Everything a trial builds before its first step."""

    config: TrialConfig
    layers: list[int]
    teacher: PreTrainedModel
    student: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    data: TaskData
    device: torch.device
    cached: TeacherOutputs | None  # the teacher's training-set outputs, when the cache is on


def run_trial(config: TrialConfig, reporter: Reporter | None = None) -> list[dict]:
    """Run a trial to its end, resuming from the reporter's checkpoint if it has one.

    Returns the metrics reported by this run, one dict per epoch.
    """
    reporter = reporter or LocalReporter(tempfile.mkdtemp(prefix="trial-"))
    setup = prepare(config)
    steps_per_epoch = -(-len(setup.data.train) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        setup.student, config.lr, config.weight_decay, config.epochs * steps_per_epoch, config.warmup_ratio
    )
    state = reporter.restore()
    if state is None:
        constants, first_epoch = _trial_constants(setup), 0
    else:
        setup.student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        loop.set_rng_state(state["rng"])
        constants, first_epoch = state["constants"], state["epoch"]

    reported = []
    for epoch in range(first_epoch, config.epochs):
        first_step = epoch * steps_per_epoch

        def on_step(step: int, values: dict[str, float], first_step: int = first_step) -> None:
            reporter.step(first_step + step + 1, {**values, "learning_rate": scheduler.get_last_lr()[0]})

        train = loop.train_epoch(
            setup.student,
            loop.make_loader(
                setup.data.train,
                setup.tokenizer,
                config.batch_size,
                setup.device,
                order_seed(config, epoch),
                config.group_by_length,
            ),
            _step_loss(setup, first_step, resumed=state is not None),
            optimizer,
            scheduler,
            config.max_grad_norm,
            setup.device,
            on_step,
        )
        epoch_metrics = {
            **constants,
            metrics.EPOCH: epoch + 1,
            **_train_metrics(train),
            metrics.LEARNING_RATE: scheduler.get_last_lr()[0],
            **loop.score_splits(
                setup.student,
                setup.data,
                setup.tokenizer,
                setup.device,
                config.eval_batch_size,
                with_test=epoch + 1 == config.epochs,
            ),
        }
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
    """Check settings, load teacher and data, and build a fresh student; no training yet."""
    config.validate()
    teacher, tokenizer, _ = load_teacher(config.teacher, config.data.task, config.trust_remote_code)
    layers = select_layers(config.strategy, teacher.config.num_hidden_layers, config.student_layers)
    data = load_task_data(config.data, tokenizer)
    device = loop.pick_device(config.device)
    teacher.to(device)
    cached = None
    if config.teacher_cache and Path(config.teacher).is_dir():
        cached = load_or_build(
            teacher,
            config.teacher,
            data.train,
            tokenizer,
            config.alpha_cos > 0,
            device,
            config.cache_memory_mb * 1024**2,
        )
    loop.seed_everything(config.seed)  # after the cache, which a first trial builds and later ones load
    student = build_student(teacher, layers, num_layers=config.student_layers).to(device)
    return Setup(config, layers, teacher, student, tokenizer, data, device, cached)


def _trial_constants(setup: Setup) -> dict:
    """Metrics fixed for the whole trial, measured once on a fresh start."""
    return {
        metrics.STRATEGY: setup.config.strategy,
        metrics.SEED: setup.config.seed,
        metrics.TEACHER_LAYERS: ",".join(map(str, setup.layers)),
        metrics.STUDENT_PARAMS: sum(p.numel() for p in setup.student.parameters()),
        metrics.INIT_ACCURACY: _accuracy(setup, setup.student, setup.data.validation),
        metrics.TEACHER_ACCURACY: _accuracy(setup, setup.teacher, setup.data.validation),
    }


def order_seed(config: TrialConfig, epoch: int) -> int:
    """The epoch's shuffling seed: a function of seed and epoch alone, the same for every strategy."""
    return config.seed * 100_003 + epoch


def _step_loss(setup: Setup, first_step: int, resumed: bool) -> loop.StepLoss:
    """The distillation loss of one batch, with the teacher run live in eval mode."""
    config, student = setup.config, setup.student
    need_hidden = config.alpha_cos > 0
    teacher_outputs = _teacher_outputs(setup)
    crash_at = None if resumed else config.fault_step("crash")
    nan_at = config.fault_step("nan")
    step = first_step

    def step_loss(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        nonlocal step
        if step == crash_at:
            raise InjectedFault(f"injected crash at step {step} (fault={config.fault!r})")
        inputs = loop.model_inputs(batch)
        teacher_logits, teacher_hidden = teacher_outputs(batch)
        student_out = student(**inputs, output_hidden_states=need_hidden)
        hidden = None
        if need_hidden:
            hidden = (student_out.hidden_states[-1], teacher_hidden, batch["attention_mask"])
        terms = distillation_loss(
            student_out.logits,
            teacher_logits,
            batch["labels"],
            config.loss_weights,
            config.temperature,
            hidden,
        )
        if step == nan_at:
            terms["loss"] = terms["loss"] * float("nan")
        step += 1
        return terms

    return step_loss


def _teacher_outputs(setup: Setup):
    """Teacher logits and last hidden states for a batch: from the cache, or a live forward pass."""
    need_hidden = setup.config.alpha_cos > 0

    def from_cache(batch: dict[str, torch.Tensor]):
        return setup.cached.batch(batch["example_index"], batch["attention_mask"], setup.device)

    @torch.no_grad()
    def live(batch: dict[str, torch.Tensor]):
        out = setup.teacher(**loop.model_inputs(batch), output_hidden_states=need_hidden)
        return out.logits, out.hidden_states[-1] if need_hidden else None

    return live if setup.cached is None else from_cache


def _train_metrics(train: dict[str, float]) -> dict[str, float]:
    return {
        metrics.TRAIN_LOSS: train["loss"],
        metrics.TRAIN_LOSS_CE: train["ce"],
        metrics.TRAIN_LOSS_KD: train["kd"],
        metrics.TRAIN_LOSS_COS: train["cos"],
        metrics.EXAMPLES_PER_SECOND: train["examples_per_second"],
    }


def _evaluate(setup: Setup, model: PreTrainedModel, rows) -> dict[str, float]:
    batches = loop.make_loader(rows, setup.tokenizer, setup.config.eval_batch_size, setup.device)
    return loop.evaluate(model, batches, setup.device)


def _accuracy(setup: Setup, model: PreTrainedModel, rows) -> float:
    return _evaluate(setup, model, rows)["accuracy"]

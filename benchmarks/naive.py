"""The baseline the trainable is measured against: the original course notebook's distillation loop.

It is written out here on purpose, because it is what the project replaces: the teacher runs forward
on every step, and every batch is tokenized from raw text and padded to `max_length`, in fp32. It
shares the trainable's batch order (same shuffling seed), optimizer and loss, so the two differ only
in how they feed the student.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from trainables import distill, loop
from trainables.config import TrialConfig
from trainables.data import load_rows, load_task_data, subset, task_spec
from trainables.losses import distillation_loss
from trainables.strategies.registry import select_layers
from trainables.student import build_student
from trainables.teacher import load_teacher


@dataclass
class Naive:
    """What the naive loop holds: both models, raw text, and one optimizer."""

    config: TrialConfig
    teacher: torch.nn.Module
    student: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    texts: list[list[str]]  # one list per text column
    labels: list[int]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device


def run_naive(config: TrialConfig) -> dict:
    """Train like the notebook; timed: the training epochs only (tokenization, teacher and student)."""
    run = _setup(config)
    train_s = sum(_epoch(run, epoch) for epoch in range(config.epochs))
    data = load_task_data(config.data, run.tokenizer)
    batches = loop.make_loader(data.validation, run.tokenizer, config.eval_batch_size, run.device)
    task = task_spec(config.data.task)
    examples = len(run.labels) * config.epochs
    return {
        "train_examples": examples,
        "train_s": round(train_s, 2),
        "examples_per_s": round(examples / train_s, 2),
        "eval_accuracy": loop.evaluate(run.student, batches, run.device, task, None)["accuracy"],
    }


def _setup(config: TrialConfig) -> Naive:
    device = loop.pick_device(config.device)
    teacher, tokenizer, _ = load_teacher(config.teacher, config.data.task)
    teacher.to(device)
    layers = select_layers(config.strategy, teacher.config.num_hidden_layers, config.student_layers)
    rows = subset(
        load_rows(config.data.task, config.data.train), config.data.train_size, config.data.data_seed
    )
    texts = [rows[column] for column in task_spec(config.data.task).text_columns]
    loop.seed_everything(config.seed)
    student = build_student(teacher, layers, num_layers=config.student_layers).to(device)
    steps = config.epochs * -(-len(rows) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        student, config.lr, config.weight_decay, steps, config.warmup_ratio
    )
    return Naive(config, teacher, student, tokenizer, texts, rows["label"], optimizer, scheduler, device)


def _epoch(run: Naive, epoch: int) -> float:
    """One epoch in the trainable's batch order (same shuffling seed); returns its wall time."""
    order = DataLoader(
        range(len(run.labels)),
        batch_size=run.config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(distill.order_seed(run.config, epoch)),
    )
    run.student.train()
    started = time.perf_counter()
    for indices in order:
        _step(run, indices.tolist())
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return time.perf_counter() - started


def _step(run: Naive, indices: list[int]) -> None:
    config, need_hidden = run.config, run.config.alpha_cos > 0
    encoded = run.tokenizer(
        *([column[i] for i in indices] for column in run.texts),
        padding="max_length",
        truncation=True,
        max_length=config.data.max_length,
        return_tensors="pt",
    ).to(run.device)
    labels = torch.tensor([run.labels[i] for i in indices], device=run.device)
    with torch.no_grad():
        teacher_out = run.teacher(**encoded, output_hidden_states=need_hidden)
    student_out = run.student(**encoded, output_hidden_states=need_hidden)
    hidden = None
    if need_hidden:
        hidden = (student_out.hidden_states[-1], teacher_out.hidden_states[-1], encoded["attention_mask"])
    terms = distillation_loss(
        student_out.logits, teacher_out.logits, labels, config.loss_weights, config.temperature, hidden
    )
    run.optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(run.student.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    terms["loss"].item()  # the notebook logs the loss every step

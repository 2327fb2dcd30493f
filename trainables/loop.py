"""Pieces shared by teacher fine-tuning and distillation: seeding, batching, one epoch, evaluation."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

import datasets
import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import (
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)
from transformers.trainer_pt_utils import LengthGroupedSampler

from trainables import metrics, vocabulary
from trainables.data import TaskData
from trainables.settings import Count, Fraction, NonNegative, Positive, settings
from trainables.tasks import TaskSpec

StepLoss = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
OnStep = Callable[[int, dict[str, float], dict[str, float]], None]


@settings
@dataclass
class TrainingSettings:
    """How a model trains, the same for fine-tuning the teacher and distilling a student; the
    learning rate and the number of epochs each define with their own defaults."""

    batch_size: Count = 32
    weight_decay: NonNegative = 0.01
    warmup_ratio: Fraction = 0.1
    max_grad_norm: Positive = 1.0
    # Number format of the matmuls: bf16 autocast where the processor has it (auto), bf16, or fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the trial stops rather than train on garbage."""


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), where it runs ~2x fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype matmuls autocast to, or None for fp32. `auto` is bf16 on CUDA and on CPUs with
    bf16 instructions. Either way a run is reproducible on one machine."""
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda" or cpu_has_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Autocast to `dtype`, or a no-op (fp32) when it is None."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def full_precision(device: torch.device) -> AbstractContextManager:
    """fp32 inside an autocast region: teacher outputs are always computed in fp32, so that a cached
    teacher and a live one give the same targets."""
    return torch.autocast(device.type, enabled=False)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def make_loader(
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    device: torch.device,
    shuffle_seed: int | None = None,
    group_by_length: bool = False,
) -> DataLoader:
    """Batches padded to their own longest row.

    The order depends on `shuffle_seed` alone, so it is exact on resume and identical across
    strategies that share a seed. `group_by_length` batches rows of similar length together (less
    padding) while keeping that determinism. The loader draws from its own generator, never the global
    one, so evaluating (or not) leaves the training's dropout masks as they were.
    """
    generator, sampler = torch.Generator().manual_seed(shuffle_seed or 0), None
    if shuffle_seed is not None and group_by_length:
        lengths = [len(ids) for ids in rows["input_ids"]]
        sampler = LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
    return DataLoader(
        rows.with_format("torch"),
        batch_size=batch_size,
        shuffle=shuffle_seed is not None and sampler is None,
        sampler=sampler,
        generator=generator,
        collate_fn=DataCollatorWithPadding(tokenizer),
        pin_memory=device.type == "cuda",
    )


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, total_steps: int, warmup_ratio: float
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """A fresh AdamW and linear warmup/decay schedule: never shared between models."""
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    params = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)]},
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    # fused: one kernel for all parameters, several times faster than the per-tensor loop on CPU too
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    warmup = int(warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The keys a Hugging Face encoder takes (drops labels and our example index)."""
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    step_loss: StepLoss,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
    device: torch.device,
    dtype: torch.dtype | None,
    on_step: OnStep | None = None,
) -> dict[str, float]:
    """One pass over `loader`; returns the mean of each loss term and the examples per second.

    `on_step(step, values, seconds)` gets each step's losses and where its wall time went: waiting
    for the batch, the forward pass with the loss, the backward pass, and clipping with the optimizer
    step. (On CUDA, kernels run asynchronously, so the laps move towards the next synchronising one.)
    """
    model.train()
    sums: dict[str, float] = {}
    examples, started = 0, time.perf_counter()
    clock = started
    for step, batch in enumerate(_on(loader, device)):
        seconds: dict[str, float] = {}
        clock = _lap(seconds, "batch", clock)
        with autocast(device, dtype):
            terms = step_loss(batch)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {loss.item()} at step {step}")
        clock = _lap(seconds, "forward", clock)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clock = _lap(seconds, "backward", clock)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        values = {name: term.item() for name, term in terms.items()}
        clock = _lap(seconds, "optimizer", clock)
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        examples += len(batch["labels"])
        if on_step is not None:
            on_step(step, values, seconds)
        clock = time.perf_counter()
    steps = max(len(loader), 1)
    means = {name: total / steps for name, total in sums.items()}
    means["examples_per_second"] = examples / (time.perf_counter() - started)
    return means


def _lap(seconds: dict[str, float], name: str, since: float) -> float:
    now = time.perf_counter()
    seconds[name] = now - since
    return now


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    device: torch.device,
    task: TaskSpec,
    dtype: torch.dtype | None,
) -> dict[str, float]:
    """The task's metrics, the hard-label loss (CE, or MSE for regression) over every example, and
    whether the model's predictions collapsed to one output (`trainables.metrics.collapsed`)."""
    model.eval()
    outputs, labels = [], []
    for batch in _on(loader, device):
        with autocast(device, dtype):
            outputs.append(model(**model_inputs(batch)).logits.float().cpu())
        labels.append(batch["labels"].cpu())
    logits, truth = torch.cat(outputs), torch.cat(labels)
    if task.regression:
        loss = torch.nn.functional.mse_loss(logits[:, 0], truth.float())
    else:
        loss = torch.nn.functional.cross_entropy(logits, truth)
    outputs, labels = logits.numpy(), truth.numpy()
    scores = metrics.score(task.metrics, outputs, labels)
    return {"loss": loss.item(), **scores, vocabulary.COLLAPSED: metrics.collapsed(outputs, labels)}


def _on(loader: DataLoader, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    for batch in loader:
        yield to_device(batch, device)


def score_splits(
    model: torch.nn.Module,
    data: TaskData,
    task: TaskSpec,
    tokenizer: PreTrainedTokenizerBase,
    device: torch.device,
    dtype: torch.dtype | None,
    batch_size: int = 128,
    with_test: bool = True,
) -> dict[str, float]:
    """Scores on every evaluation set of a task (and whether the predictions on it collapsed), under the
    names the trials report."""

    def score(rows: datasets.Dataset) -> dict[str, float]:
        return evaluate(model, make_loader(rows, tokenizer, batch_size, device), device, task, dtype)

    main = score(data.validation)
    scores = {vocabulary.EVAL_LOSS: main.pop("loss")}
    scores |= {vocabulary.scored(vocabulary.EVAL, name): value for name, value in main.items()}
    sets = {vocabulary.EVAL: data.extra_validation, vocabulary.SELECTION: {"": data.selection}}
    if with_test:
        sets[vocabulary.TEST] = {"": data.test}
    for where, named in sets.items():
        for name, rows in named.items():
            if rows is not None:
                measured = score(rows)
                measured.pop("loss")
                scores |= {vocabulary.scored(where, metric, name): v for metric, v in measured.items()}
    return scores

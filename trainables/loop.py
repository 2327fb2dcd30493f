"""Pieces shared by teacher fine-tuning and distillation: seeding, batching, one epoch, evaluation."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

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

from trainables import metrics
from trainables.data import TaskData

StepLoss = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


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


def autocast(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on CPU, where fp32 keeps results reproducible."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


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
    padding) while keeping that determinism.
    """
    generator = sampler = None
    if shuffle_seed is not None:
        generator = torch.Generator().manual_seed(shuffle_seed)
        if group_by_length:
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
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """One pass over `loader`; returns the mean of each loss term and the examples per second."""
    model.train()
    sums: dict[str, float] = {}
    examples, started = 0, time.perf_counter()
    for step, batch in enumerate(_on(loader, device)):
        with autocast(device):
            terms = step_loss(batch)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        values = {name: term.item() for name, term in terms.items()}
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        examples += len(batch["labels"])
        if on_step is not None:
            on_step(step, values)
    steps = max(len(loader), 1)
    means = {name: total / steps for name, total in sums.items()}
    means["examples_per_second"] = examples / (time.perf_counter() - started)
    return means


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Cross-entropy and accuracy over every example of `loader`."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for batch in _on(loader, device):
        with autocast(device):
            logits = model(**model_inputs(batch)).logits.float()
        labels = batch["labels"]
        loss_sum += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(-1) == labels).sum().item()
        count += len(labels)
    return {"loss": loss_sum / count, "accuracy": correct / count}


def _on(loader: DataLoader, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    for batch in loader:
        yield to_device(batch, device)


def score_splits(
    model: torch.nn.Module,
    data: TaskData,
    tokenizer: PreTrainedTokenizerBase,
    device: torch.device,
    batch_size: int = 128,
    with_test: bool = True,
) -> dict[str, float]:
    """Scores on every evaluation set of a task, under the metric names the trials report."""

    def score(rows: datasets.Dataset) -> dict[str, float]:
        return evaluate(model, make_loader(rows, tokenizer, batch_size, device), device)

    main = score(data.validation)
    scores = {metrics.EVAL_ACCURACY: main["accuracy"], metrics.EVAL_LOSS: main["loss"]}
    for name, rows in data.extra_validation.items():
        scores[metrics.extra_eval_accuracy(name)] = score(rows)["accuracy"]
    if with_test and data.test is not None:
        scores[metrics.TEST_ACCURACY] = score(data.test)["accuracy"]
    return scores

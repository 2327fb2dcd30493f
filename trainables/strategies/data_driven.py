"""The data-driven strategies: score the fine-tuned teacher's layers on calibration rows, keep K.

No training happens. Calibration rows are a fixed random sample (by `data_seed`) of the training rows,
never of the rows that rank or test, so the choice is deterministic for a given teacher, data seed
and calibration size.

* `auto:bi` keeps the K layers of highest Block Influence (Men et al. 2024, "ShortGPT"):
  BI_l = 1 - the mean cosine similarity between the hidden states entering layer l and those leaving
  it, over the calibration rows' real tokens. A layer of low BI barely changes its input. Both are
  read from the block itself (`trainables.blocks`), for encoders and decoders alike.
* `auto:drop` removes layers greedily (as Sajjad et al. 2020 and Minitron measure layer importance):
  each step removes the layer whose removal raises the truncated teacher's task loss on the
  calibration rows least, until K remain. Layer 1's input stays the embeddings, the head stays.

Each rule is a `choose` function registered here with the name of its per-layer score; adding a rule
is one more registration in this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import datasets
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainables import loop
from trainables.blocks import watching
from trainables.data import TaskSpec
from trainables.strategies.registry import Kind, Strategy, get_strategy, register_strategy
from trainables.student import build_student

CALIBRATION_BATCH = 32


@dataclass
class Choice:
    """The layers a rule kept (1-based, in depth order), each teacher layer's score, and the cost.

    `scores` is each layer's Block Influence (auto:bi), or the task loss of the teacher without that
    layer alone (auto:drop's first step). `steps` lists, for auto:drop, each step's candidate losses."""

    layers: list[int]
    scores: dict[int, float]
    seconds: float
    steps: list[dict[int, float]] = field(default_factory=list)


def calibration_rows(train: datasets.Dataset, size: int, data_seed: int) -> datasets.Dataset:
    """A fixed random sample of `size` training rows."""
    return train.shuffle(seed=data_seed).select(range(min(size, len(train))))


def choose_layers(
    strategy: str,
    teacher: PreTrainedModel,
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    student_layers: int,
    task: TaskSpec,
    dtype: torch.dtype | None = None,
) -> Choice:
    """Run the data-driven `strategy` (a registered rule, e.g. "auto:bi") on the calibration `rows`."""
    rule = get_strategy(strategy)
    if rule.kind != Kind.DATA_DRIVEN:
        raise ValueError(f"{strategy} is not a data-driven strategy")
    device = next(teacher.parameters()).device
    batches = [
        loop.to_device(b, device) for b in loop.make_loader(rows, tokenizer, CALIBRATION_BATCH, device)
    ]
    started = time.perf_counter()
    layers, scores, steps = rule.choose(teacher, batches, student_layers, task, dtype)
    return Choice(layers, scores, time.perf_counter() - started, steps)


def keep_most_influential(
    teacher: PreTrainedModel,
    batches: list[dict],
    student_layers: int,
    task: TaskSpec,
    dtype: torch.dtype | None,
) -> tuple[list[int], dict[int, float], list]:
    """auto:bi: the K layers of highest Block Influence, in depth order."""
    scores = block_influence(teacher, batches, next(teacher.parameters()).device, dtype)
    kept = sorted(sorted(scores, key=lambda layer: -scores[layer])[:student_layers])
    return kept, scores, []


def drop_least_harmful(
    teacher: PreTrainedModel,
    batches: list[dict],
    student_layers: int,
    task: TaskSpec,
    dtype: torch.dtype | None,
) -> tuple[list[int], dict[int, float], list[dict[int, float]]]:
    """auto:drop: layers removed one at a time while the truncated teacher's task loss rises least."""
    device = next(teacher.parameters()).device

    def loss_of(layers: list[int]) -> float:
        return task_loss(build_student(teacher, layers).eval(), batches, task, device, dtype)

    kept, steps = greedy_drop(loss_of, teacher.config.num_hidden_layers, student_layers)
    return kept, steps[0] if steps else {}, steps


@torch.no_grad()
def block_influence(
    teacher: PreTrainedModel, batches: list[dict], device: torch.device, dtype: torch.dtype | None = None
) -> dict[int, float]:
    """BI of each teacher layer (1-based): 1 - mean cosine(input, output) over real tokens, read from
    each block's own input and output (forward hooks), whatever the family's `hidden_states` hold."""
    teacher.eval()
    depth = teacher.config.num_hidden_layers
    similarity, tokens = torch.zeros(depth, dtype=torch.float64), 0
    mask = torch.ones(0, 0, dtype=torch.bool)

    def add(index: int, entering: torch.Tensor, leaving: torch.Tensor) -> None:
        cosine = F.cosine_similarity(entering[mask].float(), leaving[mask].float(), dim=-1)
        similarity[index] += cosine.double().sum().cpu()

    with watching(teacher, add, lambda: mask.shape[1]):
        for batch in batches:
            mask = batch["attention_mask"].bool()
            with loop.autocast(device, dtype):
                teacher(**loop.model_inputs(batch))
            tokens += int(mask.sum())
    return {layer + 1: float(1 - similarity[layer] / tokens) for layer in range(depth)}


@torch.no_grad()
def task_loss(
    model: PreTrainedModel,
    batches: list[dict],
    task: TaskSpec,
    device: torch.device,
    dtype: torch.dtype | None,
) -> float:
    """The model's mean hard-label loss (CE, or MSE for regression) on the batches."""
    total, count = 0.0, 0
    for batch in batches:
        with loop.autocast(device, dtype):
            logits = model(**loop.model_inputs(batch)).logits.float()
        labels = batch["labels"]
        if task.regression:
            total += F.mse_loss(logits[:, 0], labels.float(), reduction="sum").item()
        else:
            total += F.cross_entropy(logits, labels, reduction="sum").item()
        count += len(labels)
    return total / count


def greedy_drop(
    loss_of: Callable[[list[int]], float], depth: int, keep: int
) -> tuple[list[int], list[dict[int, float]]]:
    """Remove layers one at a time, each time the one whose removal leaves the lowest loss (the
    shallower layer on a tie), until `keep` remain. Returns the kept layers and each step's losses
    by removed layer."""
    layers, steps = list(range(1, depth + 1)), []
    while len(layers) > keep:
        losses = {layer: loss_of([other for other in layers if other != layer]) for layer in layers}
        steps.append(losses)
        layers.remove(min(layers, key=lambda layer: (losses[layer], layer)))
    return layers, steps


register_strategy(
    Strategy(
        "auto:bi",
        Kind.DATA_DRIVEN,
        "the K layers of highest Block Influence on calibration rows",
        choose=keep_most_influential,
        score="block influence",
    )
)
register_strategy(
    Strategy(
        "auto:drop",
        Kind.DATA_DRIVEN,
        "drop, one at a time, the layer whose removal raises the teacher's task loss least",
        choose=drop_least_harmful,
        score="loss without the layer",
    )
)

"""What enters and leaves each transformer block of a model, read with forward hooks.

A model's `hidden_states` output does not mean the same in every family: most count the embeddings as
entry 0, some (GPT-2, Llama and the other decoders, ModernBERT) put the final norm's output in the last
entry, and some (Longformer, BigBird) pad the sequence inside the model. Hooks on the blocks
themselves (`trainables.student.layer_list`) see each block's own input and output, so student block i
and teacher block `layers[i]` are compared as the same thing in every family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import PreTrainedModel

from trainables.student import layer_list

# on_block(index, input, output): a block's 0-based index and its input and output hidden states
# ([batch, length, hidden], cut to the length of the model's input ids).
OnBlock = Callable[[int, torch.Tensor, torch.Tensor], None]


def hidden_of(value) -> torch.Tensor:
    """The hidden states in what a block returns: the tensor itself, or the first entry of a tuple
    or model output."""
    return value if isinstance(value, torch.Tensor) else value[0]


@contextmanager
def watching(
    model: PreTrainedModel,
    on_block: OnBlock,
    length: int | Callable[[], int],
    blocks: Sequence[int] | None = None,
) -> Iterator[None]:
    """While inside, every forward pass calls `on_block` for each block in `blocks` (0-based; all by
    default) as it runs. `length` is the input's sequence length (or a function giving it for the
    current pass): states a family padded inside the model are cut back to it."""
    stack = layer_list(model)
    chosen = range(len(stack)) if blocks is None else blocks

    def hook(index: int):
        def on_forward(module: torch.nn.Module, args: tuple, kwargs: dict, output) -> None:
            size = length() if callable(length) else length
            entering = args[0] if args else kwargs["hidden_states"]
            on_block(index, entering[:, :size], hidden_of(output)[:, :size])

        return on_forward

    handles = [stack[index].register_forward_hook(hook(index), with_kwargs=True) for index in chosen]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def last_block_output(model: PreTrainedModel, inputs: dict[str, torch.Tensor]):
    """Run the model on `inputs`; return its output and its last block's output hidden states
    ([batch, length, hidden], with the graph when gradients are on)."""
    found: dict[int, torch.Tensor] = {}
    last = len(layer_list(model)) - 1

    def keep(index: int, entering: torch.Tensor, leaving: torch.Tensor) -> None:
        found[index] = leaving

    with watching(model, keep, inputs["input_ids"].shape[1], [last]):
        output = model(**inputs)
    return output, found[last]

"""Tiny random models of every family in the registry, and the teacher a student must match.

Each family's config is tiny (hidden 32, 2 heads, vocab 100) but keeps what makes the family itself:
sliding windows shorter than the inputs, alternating attention types, per-layer windows, layers
without rotary positions, relative-position tables, a contact head. `skipping` runs a teacher with
chosen layers skipped (each passes its input through): what a student of the other layers computes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel

from trainables.student import layer_list

VOCAB = 100
PAD = 0
# Weights drawn wider than a real init (0.02), so that every layer changes the hidden states and the
# logits by O(1): a wrong layer, setting or position shows in the logits, far above the 1e-5 tolerance.
INIT = 0.3
_BASE = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "initializer_range": INIT,
}
_TOKENS = {"pad_token_id": PAD, "bos_token_id": 1, "eos_token_id": 2}
_DECODER = {**_BASE, **_TOKENS, "num_key_value_heads": 1, "max_position_embeddings": 64}
WINDOW = 4  # sliding windows, shorter than LENGTH so that they change what a layer computes
LENGTH = 12  # tokens per example; the second example of a batch is padded after 8


def _repeat(pattern: Sequence, layers: int) -> list:
    return [pattern[i % len(pattern)] for i in range(layers)]


def _sizes(model_type: str, layers: int) -> dict:
    """Config keyword arguments of a tiny `layers`-layer model of the family."""
    if model_type == "distilbert":
        return {
            "vocab_size": VOCAB,
            "dim": 32,
            "n_layers": layers,
            "n_heads": 2,
            "hidden_dim": 64,
            "initializer_range": INIT,
        }
    if model_type == "gpt2":
        return {
            **_TOKENS,
            "vocab_size": VOCAB,
            "n_embd": 32,
            "n_layer": layers,
            "n_head": 2,
            "n_positions": 64,
            "initializer_range": INIT,
        }
    if model_type == "opt":
        return {
            **_DECODER,
            "num_hidden_layers": layers,
            "ffn_dim": 64,
            "word_embed_proj_dim": 32,
            "init_std": INIT,
        }
    if model_type == "gemma3":  # multimodal: a text config and a vision config
        text = {**_sizes("gemma3_text", layers), "model_type": "gemma3_text"}
        vision = {**_BASE, "num_hidden_layers": 2, "image_size": 28, "patch_size": 14}
        return {"text_config": text, "vision_config": vision, "mm_tokens_per_image": 4}
    if model_type == "funnel":  # its depth is the sum of its block sizes
        return {**_BASE, "block_sizes": [layers // 2, layers - layers // 2], "d_model": 32, "n_head": 2}
    sized = {**_BASE, "num_hidden_layers": layers}
    extra = {
        "electra": {"embedding_size": 16},
        "deberta-v2": {
            "relative_attention": True,
            "pos_att_type": ["p2c", "c2p"],
            "max_relative_positions": 8,
        },
        "big_bird": {"block_size": 2, "num_random_blocks": 1},  # block-sparse from 16 tokens on
        "convbert": {"embedding_size": 16, "conv_kernel_size": 3},
        "roformer": {"embedding_size": 16},
        "modernbert": {
            **_TOKENS,
            "cls_token_id": 1,
            "sep_token_id": 2,
            "local_attention": WINDOW,
            "global_attn_every_n_layers": 3,
        },
        "longformer": {"attention_window": _repeat([4, 8, 4, 4, 8, 8], layers), "pad_token_id": 1},
        "esm": {"pad_token_id": 1, "mask_token_id": 2, "position_embedding_type": "rotary"},
        "llama": _DECODER,
        "mistral": {**_DECODER, "sliding_window": WINDOW},
        "phi3": _DECODER,
        "olmo2": _DECODER,
        "gpt_neox": {**_TOKENS, "max_position_embeddings": 64},
        "gemma2": {**_DECODER, "head_dim": 16, "sliding_window": WINDOW, "query_pre_attn_scalar": 16},
        "gemma3_text": {**_DECODER, "head_dim": 16, "sliding_window": WINDOW, "query_pre_attn_scalar": 16},
        "smollm3": _DECODER,
        "qwen2": {**_DECODER, "use_sliding_window": True, "sliding_window": WINDOW, "max_window_layers": 5},
        "qwen3": {
            **_DECODER,
            "head_dim": 16,
            "use_sliding_window": True,
            "sliding_window": WINDOW,
            "max_window_layers": 5,
        },
        "albert": {"embedding_size": 16},
        "bart": {
            "d_model": 32,
            "encoder_layers": layers,
            "decoder_layers": layers,
            "encoder_attention_heads": 2,
        },
        "mbart": {
            "d_model": 32,
            "encoder_layers": layers,
            "decoder_layers": layers,
            "encoder_attention_heads": 2,
        },
        "t5": {"d_model": 32, "num_layers": layers, "num_heads": 2, "d_kv": 16, "d_ff": 64},
    }
    return {**sized, **extra.get(model_type, {})}


# The families whose inputs must be longer than LENGTH to reach their code path.
LONGER = {"big_bird": 32}


def tiny_config(model_type: str, layers: int = 12, num_labels: int = 3, **overrides) -> PretrainedConfig:
    return AutoConfig.for_model(
        model_type, num_labels=num_labels, **{**_sizes(model_type, layers), **overrides}
    )


def tiny_classifier(
    model_type: str, layers: int = 12, num_labels: int = 3, seed: int = 0, **overrides
) -> PreTrainedModel:
    """A randomly initialised tiny classifier of the family, in eval mode."""
    torch.manual_seed(seed)
    config = tiny_config(model_type, layers, num_labels, **overrides)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    with torch.no_grad():  # norm weights and biases start constant: make a wrong one show too
        for parameter in model.parameters():
            if parameter.numel() > 1 and bool((parameter == parameter.flatten()[0]).all()):
                parameter.add_(INIT * torch.randn_like(parameter))
    return model


def example_inputs(
    model: PreTrainedModel, length: int | None = None, seed: int = 1
) -> dict[str, torch.Tensor]:
    """Two rows of random ids away from the special tokens; the second right-padded after 2/3."""
    length = length or LONGER.get(model.config.model_type, LENGTH)
    ids = torch.randint(4, VOCAB, (2, length), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, 2 * length // 3 :] = 0
    pad = model.config.pad_token_id
    ids[1, 2 * length // 3 :] = PAD if pad is None else pad
    return {"input_ids": ids, "attention_mask": mask}


def _pass_through(module: torch.nn.Module, args: tuple, kwargs: dict, output):
    """A forward hook: the block's output is its input hidden states (in the block's output form)."""
    hidden = args[0] if args else kwargs["hidden_states"]
    return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])


@contextmanager
def skipping(model: PreTrainedModel, keep: Sequence[int]) -> Iterator[PreTrainedModel]:
    """The model with every block outside `keep` (1-based) passing its input through unchanged."""
    blocks = layer_list(model)
    hooks = [
        block.register_forward_hook(_pass_through, with_kwargs=True)
        for index, block in enumerate(blocks)
        if index + 1 not in keep
    ]
    try:
        yield model
    finally:
        for hook in hooks:
            hook.remove()

"""Dropout that is cheap on CPU, for the student a trial trains.

PyTorch draws a CPU dropout mask one element at a time (`bernoulli_` is a serial loop unless MKL runs
on an Intel processor), a large share of a distillation step on an AMD CPU. Here the mask comes from
64-bit random words cut into four 16-bit draws each: a quarter of the generator calls, and a keep
probability within 2^-16 of 1 - p, so the same expectation to that precision. The draws come from
the global seeded generator, so a seed and a checkpoint's RNG state still fix every mask; only the
mask values differ from `nn.Dropout`'s.

`use_fast_dropout` swaps a model's `nn.Dropout` modules (every family's) and, for the families whose
attention is plain scaled dot-product attention behind transformers' attention interface (BERT,
RoBERTa, DistilBERT, ELECTRA...: `fast_attention` in `trainables.architectures`), their attention for
eager attention with this dropout (SDPA on CPU falls back to a slower unfused path whenever dropout
is on). Models with their own attention modules (MPNet) apply attention dropout through a module,
which the swap covers. Decoders keep their own attention: each family's eager attention differs
(grouped key-value heads, soft-capping, sliding windows), and they train without attention dropout
by default, where SDPA stays fused; their `nn.Dropout` modules (GPT-2's, OPT's) are swapped.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

from trainables.architectures import adapter_for

ATTENTION = "eager_fast_dropout"
_LEVELS = 2**16


def fast_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero each element with probability p (to 2^-16) and scale the rest by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    draws = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
    keep = draws >= round(p * _LEVELS) - _LEVELS // 2
    return x * keep * (1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """`nn.Dropout` with the cheap mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Transformers' eager attention (additive mask, softmax, dropout on the weights) with the cheap
    dropout."""
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = fast_dropout(nn.functional.softmax(weights, dim=-1), dropout, module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, eager_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, eager_mask)


def use_fast_dropout(model: PreTrainedModel) -> PreTrainedModel:
    """Give `model` the cheap dropout wherever it drops out through a module, and in its attention
    where its family allows (see the module's docstring); returns it. Eval outputs are unchanged
    (dropout is off there; eager and SDPA attention agree to rounding)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p))
    if adapter_for(model.config).fast_attention and getattr(model, "_supports_attention_backend", False):
        model.set_attn_implementation(ATTENTION)
    return model

"""What layer surgery must know about each Hugging Face model family, in one registry.

A K-layer student copies chosen blocks of an L-layer teacher. `Architecture` holds the generic rules,
which fit most families:

* the blocks: the model's one `nn.ModuleList` of `num_hidden_layers` entries;
* the config: every per-layer entry (a list or tuple of `num_hidden_layers` values, such as
  `layer_types`, `attention_window` or `no_rope_layers`) is re-indexed by the chosen layers, so that a
  copied block keeps its own attention type, window and position encoding;
* the weights: the teacher's state dict with block `layers[i]` renamed to block i; every tensor
  outside the blocks is copied as it is.

A family that needs more (a block that differs by position, a head sized by the number of layers, a
setting derived from the layer count) registers a subclass that overrides the step concerned, and a
family that cannot be copied layer by layer registers its refusal.

`register_architecture` adds a family under its `config.model_type`, `get_architecture` looks one up,
`adapter_for(config)` gives the family's rules (or the generic ones for an unregistered family, which
`trainables.student.check_surgery` tries on the meta device before any compute).
`supported_table()` is the "Supported models" table of docs/models.md.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)

from trainables.errors import ConfigError
from trainables.registry import Registry

Kind = Literal["encoder", "decoder", "encoder-decoder"]
# Config entries that are lists but never per layer, whatever their length.
NOT_PER_LAYER = ("architectures",)


class Architecture:
    """Layer surgery for one family (`model_type`): the generic rules; a family's subclass overrides
    the step its model needs done otherwise.

    `refusal` says why no student of the family can be built by copying layers (then `check` refuses
    every config); `note` says what the surgery does beyond the generic rules, for the docs table;
    `fast_attention` says that the family's attention is plain scaled dot-product attention behind
    transformers' attention interface, so that `trainables.dropout` may swap in its eager attention
    with the cheap dropout."""

    def __init__(
        self,
        model_type: str,
        family: str,
        note: str = "",
        refusal: str | None = None,
        fast_attention: bool = False,
    ) -> None:
        self.model_type = model_type
        self.family = family
        self.note = note
        self.refusal = refusal
        self.fast_attention = fast_attention

    @property
    def kind(self) -> Kind:
        """From transformers' own model mappings: `encoder-decoder` for a sequence-to-sequence family,
        `decoder` for a causal language model family (its classifier reads the last token that is not
        padding), else `encoder`."""
        if self.model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
            return "encoder-decoder"
        causal_only = (
            self.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and self.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
        )
        return "decoder" if causal_only else "encoder"

    @property
    def exact(self) -> bool:
        return self.refusal is None

    def check(self, config: PretrainedConfig) -> None:
        """Refuse a config whose students cannot be built by copying layers (ConfigError)."""
        name = f"{self.family} ({config.model_type})"
        if self.refusal:
            raise ConfigError(f"Layer surgery cannot build a student of {name}: {self.refusal}")
        if getattr(config, "is_encoder_decoder", False):
            raise ConfigError(
                f"{name} is an encoder-decoder model with two layer stacks (an encoder and a decoder), "
                f"and a student copies the layers of one stack. Use an encoder-only or decoder-only "
                f"teacher (see docs/models.md)."
            )
        text = config.get_text_config()
        if text is not config and not isinstance(getattr(config, "num_hidden_layers", None), int):
            raise ConfigError(
                f"{name} is a multimodal model: its language layers are set in its text config "
                f"({text.model_type}), beside other encoders. Layer surgery copies the layers of a "
                f"text-only model: use the {text.model_type} model as the teacher."
            )
        depth = getattr(config, "num_hidden_layers", None)
        if not isinstance(depth, int) or depth < 2:
            raise ConfigError(
                f"{name} has no num_hidden_layers of at least 2 in its config ({depth!r}), so it has no "
                f"stack of layers to copy from. Use a teacher with one stack of transformer layers."
            )

    def layer_list_name(self, model: PreTrainedModel) -> str:
        """The dotted name of the model's list of blocks: its one ModuleList of num_hidden_layers."""
        depth = model.config.num_hidden_layers
        found = [
            name
            for name, module in model.named_modules()
            if isinstance(module, nn.ModuleList) and len(module) == depth
        ]
        if len(found) != 1:
            raise ConfigError(
                f"Cannot find the layer list of {type(model).__name__}: expected exactly one ModuleList "
                f"of {depth} blocks, found {found or 'none'}. Layer surgery supports the families of "
                f"docs/models.md: {', '.join(supported_families())}."
            )
        return found[0]

    def per_layer_entries(self, config: PretrainedConfig) -> list[str]:
        """The config entries that hold one value per layer: every public list or tuple of
        num_hidden_layers values, except token ids and `NOT_PER_LAYER`."""
        depth = config.num_hidden_layers
        return [
            name
            for name, value in vars(config).items()
            if isinstance(value, (list, tuple))
            and len(value) == depth
            and not name.startswith("_")
            and not name.endswith(("_token_id", "_token_ids"))
            and name not in NOT_PER_LAYER
        ]

    def student_config(self, config: PretrainedConfig, layers: Sequence[int]) -> PretrainedConfig:
        """The teacher's config for a student of the given 1-based teacher layers, in student order:
        `num_hidden_layers` is their number and each per-layer entry takes their values."""
        student = copy.deepcopy(config)
        for name in self.per_layer_entries(config):
            values = getattr(config, name)
            setattr(student, name, type(values)(values[layer - 1] for layer in layers))
        student.num_hidden_layers = len(layers)
        return student

    def prepare_student(
        self, student: PreTrainedModel, teacher: PreTrainedModel, layers: Sequence[int]
    ) -> None:
        """Change the fresh student's modules where a copied block needs another shape than the
        student's own block at its position would have (generic: nothing)."""

    def student_state(
        self, teacher: PreTrainedModel, student: PreTrainedModel, layers: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        """Teacher tensors under student names: block `layers[i]` becomes block i; every tensor
        outside the blocks is copied as is, after `resize_outside`. Raises ConfigError naming any
        tensor whose shape the student does not share (a head sized by the layer count, which the
        family must rebuild or drop)."""
        prefix = self.layer_list_name(teacher) + "."
        student_index = {teacher_layer - 1: i for i, teacher_layer in enumerate(layers)}
        state = {}
        for name, tensor in teacher.state_dict().items():
            if not name.startswith(prefix):
                state[name] = tensor
                continue
            index, rest = name[len(prefix) :].split(".", 1)
            if int(index) in student_index:
                state[f"{prefix}{student_index[int(index)]}.{rest}"] = tensor
        self.resize_outside(state, teacher.config, layers)
        wanted = student.state_dict()
        resized = [
            name for name, tensor in state.items() if name in wanted and wanted[name].shape != tensor.shape
        ]
        if resized:
            raise ConfigError(
                f"{self.family} ({self.model_type}) has tensors outside its layers whose shape depends on "
                f"the number of layers: {resized[:4]}. Its students cannot be built by copying layers "
                f"until its entry in trainables/architectures.py rebuilds or drops them."
            )
        return state

    def resize_outside(
        self, state: dict[str, torch.Tensor], config: PretrainedConfig, layers: Sequence[int]
    ) -> None:
        """Rebuild, in the student's `state`, the tensors outside the blocks that are sized by the
        number of layers (generic: there are none)."""

    def export_note(self, layers: Sequence[int]) -> str | None:
        """Why a saved student of these layers loads back with the family's stock code as another
        model than the one trained, or None when it loads back as itself."""
        return None


_REGISTRY: Registry[Architecture] = Registry("architecture")


def register_architecture(architecture: Architecture) -> Architecture:
    """Add a family to the registry under its model_type; returns it."""
    return _REGISTRY.add(architecture.model_type, architecture)


def get_architecture(model_type: str) -> Architecture:
    """The registered family of a model_type; ConfigError listing the registered ones otherwise."""
    return _REGISTRY.lookup(model_type)


def registered() -> list[Architecture]:
    """Every registered family, in the order of the docs table."""
    return list(_REGISTRY.values())


def supported_families() -> list[str]:
    """The names of the families whose students are built exactly."""
    return [a.family for a in registered() if a.exact]


def adapter_for(config: PretrainedConfig) -> Architecture:
    """The surgery rules for a config: its family's, or the generic rules for an unregistered family
    (which `trainables.student.check_surgery` tries on the meta device before any compute)."""
    model_type = getattr(config, "model_type", "") or ""
    if model_type in _REGISTRY:
        return _REGISTRY[model_type]
    return Architecture(model_type, type(config).__name__.removesuffix("Config") or "unknown")


def resized_config(config: PretrainedConfig, num_layers: int) -> PretrainedConfig:
    """The config of a `num_layers`-layer model of the same family (the pattern of its first layers),
    e.g. to count a student's parameters."""
    return adapter_for(config).student_config(config, range(1, num_layers + 1))


def pools_last_token(config: PretrainedConfig) -> bool:
    """Whether the family's classifier reads the last token that is not padding (a decoder), and so
    needs `pad_token_id` in its config to find it."""
    return adapter_for(config).kind == "decoder"


# ---- the families ----------------------------------------------------------------------------------


class ModernBert(Architecture):
    """ModernBERT's block 0 has no attention norm (the embeddings end with a norm), its other blocks
    have one: each student block gets the attention norm of the teacher block it copies, or none."""

    def prepare_student(
        self, student: PreTrainedModel, teacher: PreTrainedModel, layers: Sequence[int]
    ) -> None:
        blocks = student.get_submodule(self.layer_list_name(student))
        sources = teacher.get_submodule(self.layer_list_name(teacher))
        for block, layer in zip(blocks, layers, strict=True):
            if type(block.attn_norm) is not type(sources[layer - 1].attn_norm):
                block.attn_norm = copy.deepcopy(sources[layer - 1].attn_norm)

    def student_config(self, config: PretrainedConfig, layers: Sequence[int]) -> PretrainedConfig:
        student = super().student_config(config, layers)
        if hasattr(student, "global_attn_every_n_layers"):  # derived; layer_types says it per layer
            del student.global_attn_every_n_layers
        return student

    def export_note(self, layers: Sequence[int]) -> str | None:
        if not layers or layers[0] == 1:
            return None
        return (
            f"the student's first layer is teacher layer {layers[0]}, which has an attention norm; stock "
            f"ModernBERT code builds layer 0 without one (and every other layer with one), so "
            f"AutoModelForSequenceClassification loads this folder as another function than the one "
            f"trained: it drops model.layers.0.attn_norm"
            + (" and adds an untrained norm where teacher layer 1 sits." if 1 in layers else ".")
        )


class Esm(Architecture):
    """ESM's contact head regresses on every layer's attention maps (layers x heads inputs): the
    student's head keeps the teacher's coefficients of its own layers' maps."""

    CONTACT_WEIGHT = "esm.contact_head.regression.weight"

    def resize_outside(
        self, state: dict[str, torch.Tensor], config: PretrainedConfig, layers: Sequence[int]
    ) -> None:
        if self.CONTACT_WEIGHT in state:
            heads = config.num_attention_heads
            columns = [(layer - 1) * heads + head for layer in layers for head in range(heads)]
            state[self.CONTACT_WEIGHT] = state[self.CONTACT_WEIGHT][:, columns]


class Gpt2(Architecture):
    """GPT-2 can scale each block's attention by 1 / (its position + 1), which a moved block loses."""

    def check(self, config: PretrainedConfig) -> None:
        super().check(config)
        if getattr(config, "scale_attn_by_inverse_layer_idx", False):
            raise ConfigError(
                "This GPT-2 scales each layer's attention by 1 / (its position + 1) "
                "(scale_attn_by_inverse_layer_idx), so a layer copied to another position computes "
                "something else. Use a teacher without that setting."
            )


class Qwen(Architecture):
    """Qwen2/Qwen3 derive `layer_types` from `max_window_layers` (layers from it on use the sliding
    window): the student's is set to its first sliding layer, and `layer_types` says each layer's."""

    def student_config(self, config: PretrainedConfig, layers: Sequence[int]) -> PretrainedConfig:
        student = super().student_config(config, layers)
        types = list(student.layer_types or [])
        sliding = [i for i, kind in enumerate(types) if kind == "sliding_attention"]
        student.max_window_layers = sliding[0] if sliding else len(types)
        return student


_ENCODERS = [
    ("bert", "BERT", "", True),
    ("roberta", "RoBERTa", "", True),
    ("xlm-roberta", "XLM-RoBERTa", "", True),
    ("electra", "ELECTRA", "", True),
    (
        "deberta-v2",
        "DeBERTa-v2",
        "relative position embeddings, shared by all layers, copied as they are",
        False,
    ),
    ("mpnet", "MPNet", "relative attention bias, shared by all layers, copied as it is", False),
    ("distilbert", "DistilBERT", "", True),
    (
        "big_bird",
        "BigBird",
        "in training, block-sparse attention draws a layer's random blocks with the seed of its new "
        "position (any BigBird layer's are random); evaluation draws none",
        False,
    ),
    ("ernie", "ERNIE", "", True),
    ("roformer", "RoFormer", "", False),
    ("convbert", "ConvBERT", "", False),
    ("data2vec-text", "Data2VecText", "", True),
    (
        "longformer",
        "Longformer",
        "per-layer `attention_window` re-indexed: each layer keeps its window",
        False,
    ),
]
_SLIDING = "per-layer `layer_types` re-indexed: each layer keeps its sliding or full attention"
_DECODERS = [
    ("llama", "Llama", ""),
    ("mistral", "Mistral", ""),
    ("phi3", "Phi-3", ""),
    ("olmo2", "OLMo-2", ""),
    ("gpt_neox", "GPT-NeoX", ""),
    ("opt", "OPT", ""),
    ("gemma2", "Gemma-2", _SLIDING),
    ("gemma3_text", "Gemma-3", _SLIDING + " (and its RoPE)"),
    (
        "smollm3",
        "SmolLM3",
        "per-layer `no_rope_layers` and `layer_types` re-indexed: each layer keeps its use of rotary "
        "positions and its attention",
    ),
]
for _type, _family, _note, _fast in _ENCODERS:
    register_architecture(Architecture(_type, _family, _note, fast_attention=_fast))
register_architecture(
    ModernBert(
        "modernbert",
        "ModernBERT",
        "per-layer `layer_types` re-indexed: each layer keeps its local or global attention and RoPE; "
        "each keeps its attention norm or its lack of one (stock code builds layer 0 without one, so a "
        "saved student whose first layer is not teacher layer 1 does not load back as itself: its "
        "student.json says so)",
    )
)
register_architecture(
    Esm(
        "esm",
        "ESM",
        "the contact head (layers x heads inputs) keeps the teacher's weights of the student's layers",
        fast_attention=True,
    )
)
for _type, _family, _note in _DECODERS:
    register_architecture(Architecture(_type, _family, _note))
register_architecture(
    Gpt2(
        "gpt2", "GPT-2", "refused with `scale_attn_by_inverse_layer_idx` (a layer's scale is its position's)"
    )
)
for _type, _family in (("qwen2", "Qwen2"), ("qwen3", "Qwen3")):
    register_architecture(
        Qwen(_type, _family, _SLIDING + "; `max_window_layers` set to the student's first sliding layer")
    )
register_architecture(
    Architecture(
        "albert",
        "ALBERT",
        refusal="ALBERT shares one set of layer weights across all its layers (num_hidden_groups), so there "
        "are no separate layers to choose between. Use a teacher with its own weights per layer.",
    )
)
register_architecture(
    Architecture(
        "funnel",
        "Funnel Transformer",
        refusal="Funnel Transformer pools the sequence between its blocks of layers (block_sizes), so its "
        "layers are not one stack of interchangeable blocks. Use a teacher with one stack of layers.",
    )
)
register_architecture(
    Architecture(
        "gemma3",
        "Gemma-3 (multimodal)",
        refusal="Gemma3ForSequenceClassification is a multimodal model: its language layers sit beside a "
        "vision encoder and are set in its text_config. Use the text-only model (gemma3_text).",
    )
)
for _type, _family in (("bart", "BART"), ("mbart", "mBART"), ("t5", "T5")):
    register_architecture(
        Architecture(
            _type,
            _family,
            refusal=f"{_family} is an encoder-decoder model with two layer stacks, and a student copies "
            "the layers of one stack. Use an encoder-only or decoder-only teacher.",
        )
    )


def supported_table() -> str:
    """The Markdown table of every registered family: its model_type, kind, whether its students
    are built exactly or refused, and what the surgery does for it."""
    rows = ["| family | model_type | kind | surgery | note |", "|---|---|---|---|---|"]
    for a in registered():
        surgery = "exact" if a.exact else "refused"
        note = a.note if a.exact else a.refusal
        rows.append(f"| {a.family} | `{a.model_type}` | {a.kind} | {surgery} | {note} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """`python -m trainables.architectures`: print the supported-models table (docs/models.md)."""
    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    print(supported_table())


if __name__ == "__main__":
    main()

"""The teacher: fine-tuned once per study, saved with its own scores, then loaded by every trial.

A trial refuses a teacher whose classifier head was never trained: distilling from a random head
teaches the student noise, and nothing downstream would show it. A fine-tuned classifier whose label
names are in another order than the task's (e.g. an MNLI checkpoint with 0 = contradiction) has its
output rows put in the task's order, so that its outputs and the data's labels mean the same classes.
Every tokenizer pads on the right, with its end-of-sequence token when it has no pad token, and a
decoder's config names that pad token, so that its classifier reads each row's last real token
(`prepare_padding`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from trainables import loop
from trainables.architectures import pools_last_token
from trainables.data import DataConfig, TaskData, load_task_data
from trainables.errors import ConfigError
from trainables.hub import require_model
from trainables.settings import Count, Flag, LearningRate, Seed, Text, check
from trainables.tasks import TaskRef, TaskSpec, task_name, task_spec

log = logging.getLogger(__name__)

TEACHER_INFO = "teacher.json"
WEIGHT_FILES = ("*.safetensors", "*.bin")
# Files that hold a tokenizer's vocabulary; without any, transformers builds a tokenizer of its special
# tokens alone, which reads every word as [UNK].
VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "merges.txt",
)
# A tokenizer belongs to a model when it has as many tokens as the model has embedding rows, or a few
# fewer: some models round their embedding up (Phi-2: 50,295 tokens for 51,200 rows, 98%).
MIN_TOKENIZER_SHARE = 0.9
_GENERIC_LABEL = re.compile(r"^label_\d+$")


@dataclass
class TeacherSettings(loop.TrainingSettings):
    """How to fine-tune a base encoder into the study's teacher."""

    base: Text | None = None
    epochs: Count = 3
    lr: LearningRate = 1e-4
    seed: Seed = 0
    trust_remote_code: Flag = False


@dataclass
class TeacherConfig(TeacherSettings):
    data: DataConfig = field(default_factory=DataConfig)
    device: Text = "auto"

    def validate(self) -> None:
        check(self, "teacher")
        if not self.base:
            raise ConfigError("No teacher base given: name a model folder or hub id.")
        self.data.validate()


def weights_hash(folder: str | Path) -> str:
    """SHA-256 of a model folder's weight files (names and contents): the teacher's identity, in every
    trial's results and in the key of its output cache. About 1 s per GB."""
    digest = hashlib.sha256()
    files = sorted(path for pattern in WEIGHT_FILES for path in Path(folder).expanduser().glob(pattern))
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def load_classifier(name: str, task: TaskRef, trust_remote_code: bool = False):
    """Model, tokenizer and the names of weights that were newly initialised (not in the files).

    Refuses (ConfigError) weight files that cannot be read, weights of the encoder or decoder that are
    missing from the files or that the config has no place for (`check_weights`; only a classifier head
    may be new), and a tokenizer that does not belong to the model (`check_tokenizer`)."""
    require_model(name)
    spec = task_spec(task)
    saved = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    is_classifier = check_head(saved, name, task)
    extra = {"problem_type": "regression"} if spec.regression else {}
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            name,
            num_labels=spec.num_labels,
            output_loading_info=True,
            trust_remote_code=trust_remote_code,
            **extra,
        )
    except Exception as error:  # transformers, safetensors and torch each raise their own kinds
        raise ConfigError(
            f"Cannot load the weights of {name} ({type(error).__name__}: {str(error).strip()[:300]}). Its "
            f"weight files are missing, cut off or not this model's: save the model again "
            f"(save_pretrained) or copy its files anew."
        ) from None
    check_weights(model, info, name)
    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    check_tokenizer(tokenizer, model, name)
    prepare_padding(model, tokenizer, name)
    if is_classifier and not info["missing_keys"]:
        match_labels(model, spec, name)
    return model, tokenizer, sorted(info["missing_keys"])


def check_weights(model: PreTrainedModel, info: dict, name: str) -> None:
    """Refuse a checkpoint that does not fill the model its config describes: weights of the encoder
    (or decoder) missing from the files (e.g. a config of 4 layers over the weights of 2, whose layers 3
    and 4 would start from random values), or weights in the files that the model has no place for
    (the weights of layers the config does not have). A classifier head (and its pooler) may be new, to
    be fine-tuned; a head of another kind in the files (a language-modelling head) is left out."""
    prefix = f"{model.base_model_prefix}."
    body = {child for child, _ in model.base_model.named_children()} - {"pooler"}
    buffers = {key.removeprefix(prefix) for key, _ in model.named_buffers()}

    def in_body(key: str) -> bool:
        inner = key.removeprefix(prefix)
        return inner.split(".")[0] in body and inner not in buffers

    missing = sorted(key for key in info["missing_keys"] if key.startswith(prefix) and in_body(key))
    unexpected = sorted(key for key in info["unexpected_keys"] if in_body(key))
    if missing or unexpected:
        depth = getattr(model.config, "num_hidden_layers", "?")
        listed = "; ".join(
            f"{what} {keys[:3]}{f' and {len(keys) - 3} more' if len(keys) > 3 else ''}"
            for what, keys in (
                ("missing from the files:", missing),
                ("in the files but not the model:", unexpected),
            )
            if keys
        )
        raise ConfigError(
            f"The weights of {name} do not fit its config ({depth} layers): {listed}. Its config.json and "
            f"weight files come from different models; save the model again (save_pretrained), or fix "
            f"num_hidden_layers in config.json."
        )


def check_tokenizer(tokenizer, model: PreTrainedModel, name: str) -> None:
    """Refuse a tokenizer that does not belong to the model: more tokens than the model has embedding
    rows, or far fewer (fewer than MIN_TOKENIZER_SHARE of them), as when a folder lacks its tokenizer
    files and transformers builds a tokenizer of the special tokens alone."""
    rows, tokens = model.get_input_embeddings().weight.shape[0], len(tokenizer)
    if tokens > rows:
        raise ConfigError(
            f"The tokenizer of {name} has {tokens} tokens but the model's vocabulary has {rows}: they do "
            f"not belong together."
        )
    if tokens >= MIN_TOKENIZER_SHARE * rows:
        return
    folder = Path(name).expanduser()
    if folder.is_dir() and not any((folder / file).is_file() for file in VOCABULARY_FILES):
        raise ConfigError(
            f"{name} lacks tokenizer files ({', '.join(VOCABULARY_FILES[:3])}, ...): the tokenizer built "
            f"without them has {tokens} tokens for an embedding of {rows} rows, and reads every word as "
            f"unknown. Save the tokenizer the model was trained with into {name} "
            f"(tokenizer.save_pretrained)."
        )
    raise ConfigError(
        f"The tokenizer of {name} has {tokens} tokens for an embedding of {rows} rows: it is not the "
        f"model's tokenizer. Save the tokenizer the model was trained with into {name}."
    )


def max_positions(model: PreTrainedModel, tokenizer) -> int | None:
    """The longest input the model takes, in tokens: its position embeddings (less the rows that
    positions after a padding index skip, as in RoBERTa), capped by the tokenizer's own limit; None
    when neither says."""
    limits = []
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int):
        embeddings = getattr(getattr(model.base_model, "embeddings", None), "position_embeddings", None)
        padding = getattr(embeddings, "padding_idx", None)
        limits.append(positions - (padding + 1 if padding is not None else 0))
    if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length < 10**6:
        limits.append(tokenizer.model_max_length)
    return min(limits) if limits else None


def check_max_length(model: PreTrainedModel, tokenizer, max_length: int, name: str) -> None:
    """Refuse a data.max_length longer than the inputs the teacher (and so every student) takes."""
    limit = max_positions(model, tokenizer)
    if limit is not None and max_length > limit:
        raise ConfigError(
            f"data.max_length is {max_length} tokens, but {name} takes inputs of at most {limit} tokens "
            f"(its position embeddings); set max_length to at most {limit}."
        )


def prepare_padding(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    """Make batches of the classifier padded the way every part of a trial reads them.

    Padding goes on the right: a decoder's real tokens then keep positions 0..n-1 whatever the batch,
    and the teacher-output cache lays rows out that way. A tokenizer without a pad token (most
    decoders') pads with its end-of-sequence token. A decoder's classifier reads each row's last token
    that is not `config.pad_token_id`, so that is set to the tokenizer's pad token. A classifier never
    generates, so it keeps no key-value cache (`use_cache` off)."""
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ConfigError(
                f"The tokenizer of {name} has neither a pad token nor an end-of-sequence token to pad "
                f"batches with. Set pad_token (or eos_token) in its tokenizer_config.json."
            )
        tokenizer.pad_token = tokenizer.eos_token
    if pools_last_token(model.config) and model.config.pad_token_id != tokenizer.pad_token_id:
        model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model.config, "use_cache", False):
        model.config.use_cache = False


def check_head(saved, name: str, task: TaskRef) -> bool:
    """Whether the saved model is already a classifier; refuse one with another number of labels."""
    is_classifier = any("ForSequenceClassification" in a for a in getattr(saved, "architectures", None) or [])
    spec = task_spec(task)
    labels = spec.num_labels
    if is_classifier and saved.num_labels != labels:
        raise ConfigError(
            f"{name} is a {saved.num_labels}-way classifier but {spec.name} has {labels} labels. "
            f"Use a teacher fine-tuned on {spec.name}, or fine-tune one from a base encoder."
        )
    return is_classifier


def label_order_note(model: PreTrainedModel, spec: TaskSpec) -> str | None:
    """Why the teacher's label order cannot be checked (generic names), or None when it can."""
    names = [str(model.config.id2label.get(i, "")) for i in range(spec.num_labels)]
    if spec.regression or not all(_GENERIC_LABEL.match(_plain(n)) for n in names):
        return None
    return (
        f"the teacher's labels are named {names} (generic), so their order cannot be checked against "
        f"the task's ({', '.join(spec.label_names)}); make sure it was fine-tuned on data labelled that way."
    )


def match_labels(model: PreTrainedModel, spec: TaskSpec, name: str) -> None:
    """Put the classifier's outputs in the task's label order, when its label names say otherwise."""
    if spec.regression or label_order_note(model, spec):
        return
    names = [_plain(str(model.config.id2label.get(i, ""))) for i in range(spec.num_labels)]
    wanted = [_plain(label) for label in spec.label_names]
    if names == wanted:
        return
    if sorted(names) != sorted(wanted):
        raise ConfigError(
            f"{name} names its labels {names}, but the task's labels are {wanted} (in that order): they "
            f"cannot be matched. Use a teacher fine-tuned on this task, or fix id2label in its config.json."
        )
    head = _output_layer(model, spec.num_labels, name)
    order = torch.tensor([names.index(label) for label in wanted])
    with torch.no_grad():
        head.weight.copy_(head.weight[order])
        if head.bias is not None:
            head.bias.copy_(head.bias[order])
    _name_labels(model, spec)


def _plain(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _output_layer(model: PreTrainedModel, num_labels: int, name: str) -> torch.nn.Linear:
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if len(layers) != 1:
        raise ConfigError(
            f"{name}'s labels are in another order than the task's, and its output layer cannot be "
            f"found to reorder them. Fix id2label/label2id and the head in the checkpoint."
        )
    return layers[0]


def load_teacher(name: str, task: TaskRef, trust_remote_code: bool = False):
    """A fine-tuned teacher in eval mode, its tokenizer, and its saved info (empty if none)."""
    model, tokenizer, newly_initialised = load_classifier(name, task, trust_remote_code)
    if newly_initialised:
        task = task_name(task)
        raise ConfigError(
            f"Teacher {name} has untrained weights {newly_initialised[:4]}: its classifier head was "
            f"never fine-tuned on {task}. Fine-tune it first (trainables.teacher.finetune_teacher, or "
            f"the sweep's teacher stage) or point at a checkpoint fine-tuned on {task}."
        )
    info_path = Path(name).expanduser() / TEACHER_INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return model.eval(), tokenizer, info


def finetune_teacher(config: TeacherConfig, out_dir: str | Path) -> dict:
    """Fine-tune `config.base` on the task, save it to `out_dir` with teacher.json, return the info."""
    config.validate()
    spec = task_spec(config.data.task)
    device = loop.pick_device(config.device)
    dtype = loop.autocast_dtype(config.precision, device)
    loop.seed_everything(config.seed)
    model, tokenizer, _ = load_classifier(config.base, config.data.task, config.trust_remote_code)
    _name_labels(model, spec)
    data = load_task_data(config.data, tokenizer)
    model.to(device)
    steps_per_epoch = -(-len(data.train) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        model, config.lr, config.weight_decay, config.epochs * steps_per_epoch, config.warmup_ratio
    )

    def step_loss(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": model(**loop.model_inputs(batch), labels=batch["labels"]).loss}

    history = []
    for epoch in range(config.epochs):
        started = time.perf_counter()
        order = loop.make_loader(data.train, tokenizer, config.batch_size, device, config.seed * 1000 + epoch)
        train = loop.train_epoch(
            model, order, step_loss, optimizer, scheduler, config.max_grad_norm, device, dtype
        )
        # The last epoch's scores are the teacher's record: in fp32, as every trial scores it.
        last = epoch + 1 == config.epochs
        scores = loop.score_splits(
            model, data, spec, tokenizer, device, None if last else dtype, with_test=last
        )
        history.append({"epoch": epoch + 1, "train_loss": train["loss"], **scores})
        shown = ", ".join(
            (name if isinstance(value, bool) else f"{name} {value:.4f}")  # a collapse flag: named when set
            for name, value in history[-1].items()
            if name != "epoch" and value is not False
        )
        seconds = time.perf_counter() - started
        log.info(f"teacher epoch {epoch + 1}/{config.epochs}: {shown} ({seconds:.0f} s)")
    info = {
        **history[-1],
        "task": task_name(config.data.task),
        "base": config.base,
        "history": history,
        "majority_accuracy": majority_accuracy(data, spec),
        "config": asdict(config),
    }
    _save(model.cpu(), tokenizer, info, Path(out_dir))
    return info


def majority_accuracy(data: TaskData, spec: TaskSpec) -> float | None:
    """Accuracy of always predicting the training set's most common label, on validation."""
    if spec.regression:
        return None
    majority = torch.tensor(data.train["labels"]).mode().values.item()
    return sum(label == majority for label in data.validation["labels"]) / len(data.validation)


def _name_labels(model: PreTrainedModel, spec: TaskSpec) -> None:
    if spec.regression:
        return
    model.config.id2label = dict(enumerate(spec.label_names))
    model.config.label2id = {name: i for i, name in enumerate(spec.label_names)}


def _save(model: PreTrainedModel, tokenizer, info: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / TEACHER_INFO).write_text(json.dumps(info, indent=2))

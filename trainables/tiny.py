"""A tiny offline world: a synthetic sentiment task, and a small BERT or Llama that fits it in seconds.

It lets the smoke study and the tests run the whole pipeline with no network and no downloads. The
task can take the shape of any GLUE task (its columns and labels): a pair task gets a second,
uninformative sentence, and a regression task (STS-B) a score in [0, 5] that grows with the sentiment.
The decoder comes with a word-level tokenizer that, like most decoders', has no pad token.
"""

import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
    LlamaConfig,
    LlamaModel,
    ModernBertConfig,
    ModernBertModel,
    PreTrainedTokenizerFast,
)

from trainables.tasks import task_spec

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The tiny ModernBERT's special tokens, in the BERT vocabulary it shares.
TOKEN_NAMES = {
    "pad_token_id": "[PAD]",
    "cls_token_id": "[CLS]",
    "sep_token_id": "[SEP]",
    "bos_token_id": "[CLS]",
    "eos_token_id": "[SEP]",
}
DECODER_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]  # no pad token
POSITIVE = ["good", "great", "fine", "nice", "superb", "lovely", "brilliant", "moving", "funny"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "weak", "messy", "tedious", "bland"]
FILLER = [
    "the",
    "a",
    "movie",
    "film",
    "plot",
    "cast",
    "was",
    "is",
    "really",
    "quite",
    "very",
    "story",
    "acting",
    "and",
    "but",
    "script",
    "ending",
    "music",
    "scenes",
    "overall",
]
SPLIT_SIZES = {"train": 512, "validation": 256, "test": 256}
LABEL_NOISE = 0.1  # keeps accuracies below 1.0 so strategies can differ


def write_sentiment_task(directory: str | Path, seed: int = 0, task: str = "sst2") -> dict[str, str]:
    """Write JSON-lines splits in the columns of `task` (default SST-2's: sentence, label, idx);
    return split → path."""
    spec = task_spec(task)
    rng = random.Random(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size in SPLIT_SIZES.items():
        path = directory / f"{split}.jsonl"
        rows = [_shaped(_sentence(rng, idx), spec.text_columns, spec.regression, rng) for idx in range(size)]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        paths[split] = str(path)
    return paths


def _shaped(row: dict, columns: tuple[str, ...], regression: bool, rng: random.Random) -> dict:
    """The row in a task's columns: the sentence first, filler in any second column."""
    shaped = {columns[0]: row["sentence"], "label": row["label"], "idx": row["idx"]}
    if len(columns) > 1:
        shaped[columns[1]] = " ".join(rng.choices(FILLER, k=4))
    if regression:
        shaped["label"] = round(4.0 * row["label"] + rng.random(), 3)
    return shaped


def _sentence(rng: random.Random, idx: int) -> dict:
    """Fillers plus a cue word; a contrasting word after 'but' decides the label."""
    label = rng.randrange(2)
    cue, other = (POSITIVE, NEGATIVE) if label else (NEGATIVE, POSITIVE)
    words = rng.choices(FILLER, k=rng.randint(3, 8)) + [rng.choice(cue)]
    if rng.random() < 0.3:
        words = rng.choices(FILLER, k=2) + [rng.choice(other), "but"] + words
    if rng.random() < LABEL_NOISE:
        label = 1 - label
    return {"sentence": " ".join(words), "label": label, "idx": idx}


def write_tiny_encoder(
    directory: str | Path, layers: int = 4, hidden: int = 64, seed: int = 0, family: str = "bert"
) -> str:
    """Save a randomly initialised tiny encoder (`family`: "bert", or "modernbert" with an 8-token
    local attention window) and a word-level tokenizer for the task."""
    torch.manual_seed(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    words = SPECIAL_TOKENS + POSITIVE + NEGATIVE + FILLER
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(words)})
    sizes = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden,
        "max_position_embeddings": 64,
    }
    if family == "bert":
        BertModel(BertConfig(**sizes)).save_pretrained(directory)
    elif family == "modernbert":
        ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in TOKEN_NAMES.items()}
        config = ModernBertConfig(**sizes, **ids, local_attention=8)
        ModernBertModel(config).save_pretrained(directory)
    else:
        raise ValueError(f"No tiny encoder of family {family!r}; there are bert and modernbert.")
    tokenizer.save_pretrained(directory)
    return str(directory)


def write_labelled_classifier(directory: str | Path, id2label: dict[int, str], seed: int = 0):
    """Save a randomly initialised tiny 2-layer BERT classifier whose config names its classes
    `id2label` (with a word-level tokenizer); returns the model, in eval mode."""
    torch.manual_seed(seed)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(SPECIAL_TOKENS + FILLER)})
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={name: index for index, name in id2label.items()},
    )
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model


def write_tiny_decoder(directory: str | Path, layers: int = 4, hidden: int = 64, seed: int = 0) -> str:
    """Save a randomly initialised tiny Llama decoder and a word-level tokenizer for the task that,
    like most decoders' tokenizers, has no pad token: it starts a text with <s> and puts </s> between
    the two texts of a pair."""
    torch.manual_seed(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    words = DECODER_SPECIAL_TOKENS + POSITIVE + NEGATIVE + FILLER
    ids = {word: i for i, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A",
        pair="<s> $A </s> $B:1",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_input_names=["input_ids", "attention_mask"],
    )
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        pad_token_id=None,
    )
    LlamaModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)

"""Teacher outputs on the training set, computed once and reused by every epoch and every trial.

The teacher is frozen and runs in eval mode, so its logits and last hidden states (the output of its
last block, before any final norm: `trainables.blocks`) are a pure function of (teacher weights,
training rows, tokenizer, max length). They are stored beside the teacher under a key made of exactly
those (the weights by their content hash, the rows by their token ids), with a checksum, so a stale or
corrupt cache is rebuilt, never used.

Teacher outputs are computed and kept in fp32, whatever precision the student trains in, so a trial
that reads the cache and one that runs the teacher live get the same targets.

Size: logits take examples × labels × 4 bytes; hidden states (only when the cosine term is on) take
tokens × hidden × 4 bytes (no padding), e.g. 1000 SST-2 rows ≈ 25k tokens × 384 ≈ 38 MB. Caches
larger than `max_memory_bytes` are memory-mapped from disk instead of loaded into RAM.
"""

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainables import loop
from trainables.blocks import last_block_output

CACHE_DIR = "teacher_cache"
FORMAT_VERSION = 3  # in the cache key: a cache written in another layout is rebuilt


@dataclass
class TeacherOutputs:
    """Per-example teacher logits, and optionally last hidden states without padding."""

    logits: np.ndarray  # [examples, labels] float32
    hidden: np.ndarray | None  # [total tokens, hidden] float32, examples back to back
    offsets: np.ndarray | None  # [examples + 1] start of each example in `hidden`

    def batch(
        self, example_index: torch.Tensor, attention_mask: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and right-padded hidden states for a batch, shaped like a live teacher's."""
        rows = example_index.cpu().numpy()
        logits = torch.from_numpy(np.ascontiguousarray(self.logits[rows])).to(device)
        if self.hidden is None:
            return logits, None
        width, size = attention_mask.shape[1], self.hidden.shape[1]
        padded = np.zeros((len(rows), width, size), dtype=np.float32)
        for i, row in enumerate(rows):
            start, end = self.offsets[row], self.offsets[row + 1]
            padded[i, : end - start] = self.hidden[start:end]
        return logits, torch.from_numpy(padded).to(device)


def cache_key(teacher_hash: str, rows: datasets.Dataset, with_hidden: bool) -> str:
    """Names the teacher weights (their content hash), the exact token ids and whether hidden states
    are kept."""
    digest = hashlib.sha256()
    digest.update(f"v{FORMAT_VERSION}:{with_hidden}:{teacher_hash}:".encode())
    for ids in rows["input_ids"]:
        digest.update(np.asarray(ids, dtype=np.int64).tobytes() + b"|")
    return digest.hexdigest()[:24]


def load_or_build(
    teacher: PreTrainedModel,
    teacher_dir: str,
    teacher_hash: str,
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    with_hidden: bool,
    device: torch.device,
    max_memory_bytes: int,
) -> TeacherOutputs:
    """The cached outputs for `rows`, building (or rebuilding) them if missing or invalid."""
    folder = Path(teacher_dir) / CACHE_DIR / cache_key(teacher_hash, rows, with_hidden)
    outputs = _load(folder, len(rows), max_memory_bytes)
    if outputs is None:
        _write(folder, _compute(teacher, rows, tokenizer, with_hidden, device))
        outputs = _load(folder, len(rows), max_memory_bytes)
    return outputs


@torch.no_grad()
def _compute(
    teacher: PreTrainedModel,
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    with_hidden: bool,
    device: torch.device,
) -> TeacherOutputs:
    teacher.eval()
    logits, pieces, lengths = [], [], []
    for batch in loop.make_loader(rows, tokenizer, 64, device):
        batch = loop.to_device(batch, device)
        with loop.full_precision(device):
            if with_hidden:
                out, last = last_block_output(teacher, loop.model_inputs(batch))
            else:
                out = teacher(**loop.model_inputs(batch))
        logits.append(out.logits.float().cpu())
        if with_hidden:
            mask = batch["attention_mask"].bool()
            pieces.append(last[mask].float().cpu())
            lengths.append(mask.sum(1).cpu())
    hidden = offsets = None
    if with_hidden:
        hidden = torch.cat(pieces).numpy()
        offsets = np.concatenate([[0], torch.cat(lengths).cumsum(0).numpy()])
    return TeacherOutputs(torch.cat(logits).numpy(), hidden, offsets)


def _arrays(outputs: TeacherOutputs) -> dict[str, np.ndarray]:
    arrays = {"logits": outputs.logits}
    if outputs.hidden is not None:
        arrays.update(hidden=outputs.hidden, offsets=outputs.offsets)
    return arrays


def _write(folder: Path, outputs: TeacherOutputs) -> None:
    """Write to a temporary folder and rename it into place, so readers never see half a cache."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".building-"))
    checksums = {}
    for name, array in _arrays(outputs).items():
        np.save(staging / f"{name}.npy", array)
        checksums[name] = _checksum(staging / f"{name}.npy")
    (staging / "meta.json").write_text(json.dumps({"examples": len(outputs.logits), "sha256": checksums}))
    shutil.rmtree(folder, ignore_errors=True)
    try:
        staging.rename(folder)
    except OSError:  # another trial finished the same cache first
        shutil.rmtree(staging, ignore_errors=True)


def _load(folder: Path, examples: int, max_memory_bytes: int) -> TeacherOutputs | None:
    """The cache in `folder` if it is complete, matches `examples` and its checksums; else None."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        files = {name: folder / f"{name}.npy" for name in meta["sha256"]}
        if meta["examples"] != examples or any(_checksum(files[n]) != s for n, s in meta["sha256"].items()):
            return None
        mmap = "r" if sum(f.stat().st_size for f in files.values()) > max_memory_bytes else None
        arrays = {name: np.load(path, mmap_mode=mmap) for name, path in files.items()}
    except (OSError, ValueError, KeyError):
        return None
    if len(arrays["logits"]) != examples:
        return None
    return TeacherOutputs(arrays["logits"], arrays.get("hidden"), arrays.get("offsets"))


def _checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

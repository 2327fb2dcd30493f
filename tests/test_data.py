"""Data loading: every bad input is named before any model sees it; the hub fails fast."""

import json
import time
from pathlib import Path

import pytest

from trainables.data import DataConfig, load_rows, load_split, load_task_data, subset
from trainables.errors import ConfigError
from trainables.teacher import load_teacher


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_unknown_task(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown task .mnli2.. Registered tasks: mnli, rte"):
        DataConfig(task="mnli2").validate()


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="Data file /nowhere/train.jsonl does not exist"):
        load_rows("sst2", "/nowhere/train.jsonl")


def test_unknown_hub_split() -> None:
    with pytest.raises(ConfigError, match="neither a data file .* nor a nyu-mll/glue split of mnli"):
        load_rows("mnli", "validation")


def test_rows_lacking_the_task_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"sentence": "a film", "label": 1}])
    with pytest.raises(ConfigError, match=r"lacks the mnli columns \['premise', 'hypothesis'\]"):
        load_rows("mnli", path)


def test_labels_outside_the_task_range(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"sentence": "ok", "label": 1}, {"sentence": "x", "label": 2}]
    )
    with pytest.raises(ConfigError, match=r"rows \[1\] have labels outside 0..1"):
        load_rows("sst2", path)


def test_unlabelled_glue_test_rows_get_a_hint(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "test.jsonl", [{"sentence": "ok", "label": -1}])
    with pytest.raises(ConfigError, match="GLUE test splits on the hub are unlabelled"):
        load_rows("sst2", path)


def test_malformed_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"sentence": "fine", "label": 1}\n{"sentence": "broken", "label": \n')
    with pytest.raises(ConfigError, match="Cannot parse .*rows.jsonl as json"):
        load_rows("sst2", str(path))


def test_row_without_text(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"sentence": "ok", "label": 1}, {"sentence": None, "label": 0}]
    )
    with pytest.raises(ConfigError, match=r"column 'sentence' has no text in rows \[1\]"):
        load_rows("sst2", path)


def test_csv_files_load_like_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("sentence,label\na good film,1\na bad film,0\n")
    assert load_rows("sst2", str(path))["label"] == [1, 0]


def test_subsets_are_fixed_by_data_seed(tiny_task: DataConfig) -> None:
    rows = load_rows("sst2", tiny_task.train)
    first, again, other = subset(rows, 50, 0), subset(rows, 50, 0), subset(rows, 50, 1)
    assert first["idx"] == again["idx"] and first["idx"] != other["idx"]
    assert len(subset(rows, None, 0)) == len(rows) == len(subset(rows, 10_000, 0))


def test_evaluation_sets_keep_every_configured_example(tiny_task: DataConfig, tiny_teacher: str) -> None:
    _, tokenizer, _ = load_teacher(tiny_teacher, "sst2")
    data = load_task_data(tiny_task, tokenizer)
    assert (len(data.train), len(data.validation), len(data.test)) == (512, 256, 256)


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")


def test_unreachable_hub_fails_within_seconds_for_data(unreachable_hub: None) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="Cannot load nyu-mll/glue/mnli split 'train'.*local .jsonl"):
        load_rows("mnli", "train")
    assert time.perf_counter() - started < 10


def test_unreachable_hub_fails_within_seconds_for_models(unreachable_hub: None) -> None:
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="Cannot load model 'bert-base-uncased'.*local model folder"):
        load_teacher("bert-base-uncased", "mnli")
    assert time.perf_counter() - started < 10


def test_tokenization_is_done_once_and_reused(tiny_task: DataConfig, tiny_teacher: str) -> None:
    """`datasets` keys the tokenized split by content, so later trials read it instead of tokenizing."""
    _, tokenizer, _ = load_teacher(tiny_teacher, "sst2")
    first = load_split(tiny_task, tiny_task.train, 100, tokenizer)
    (cache,) = {
        Path(f["filename"]) for f in first.cache_files if Path(f["filename"]).name.startswith("cache-")
    }
    written = cache.stat().st_mtime_ns
    again = load_split(tiny_task, tiny_task.train, 100, tokenizer)
    assert cache in {Path(f["filename"]) for f in again.cache_files}
    assert cache.stat().st_mtime_ns == written
    assert again["input_ids"] == first["input_ids"]

"""A decoder teacher through a whole study: the smoke study with a tiny Llama whose tokenizer has no
pad token, fine-tuned, its layers chosen from data, distilled, ranked and exported, offline."""

import json
from pathlib import Path

import pandas as pd
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from sweep.run import main
from tests.conftest import smoke_args
from trainables.teacher_cache import CACHE_DIR
from trainables.tiny import write_sentiment_task, write_tiny_decoder

pytestmark = pytest.mark.ray
STRATEGIES = ["bottom", "top", "auto:bi", "auto:drop"]


def test_a_decoder_teacher_runs_a_study_end_to_end(tmp_path: Path) -> None:
    world = {"encoder": write_tiny_decoder(tmp_path / "llama"), **write_sentiment_task(tmp_path / "data")}
    assert AutoTokenizer.from_pretrained(world["encoder"]).pad_token is None
    assert main(smoke_args(world, tmp_path / "runs", "--strategies", *STRATEGIES, "--cpus", "2")) == 0
    study = tmp_path / "runs" / "smoke"

    stage = json.loads((study / "teacher" / "stage.json").read_text())
    assert stage["finetuned"] and stage["eval_accuracy"] > stage["majority_accuracy"] + 0.25
    assert stage["strategies"]["top"]["layers"] == [3, 4]
    for strategy in ("auto:bi", "auto:drop"):
        chosen = stage["strategies"][strategy]
        assert len(chosen["layers"]) == 2 and set(chosen["scores"]) == {"1", "2", "3", "4"}
    assert any((study / "teacher" / "model" / CACHE_DIR).iterdir())

    for name in ("search", "replicate"):
        table = pd.read_csv(study / name / "trials.csv")
        assert set(table["status"]) == {"TERMINATED"} and set(table["strategy"]) == set(STRATEGIES)
        assert (table["eval_accuracy"] > stage["majority_accuracy"]).all()
    ranking = pd.read_csv(study / "ranking.csv")
    assert set(ranking["strategy"]) == set(STRATEGIES)

    student = AutoModelForSequenceClassification.from_pretrained(study / "best_student")
    tokenizer = AutoTokenizer.from_pretrained(study / "best_student")
    assert type(student).__name__ == "LlamaForSequenceClassification"
    assert student.config.num_hidden_layers == 2
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "right"
    assert student.config.pad_token_id == tokenizer.pad_token_id
    speed = json.loads((study / "speed.json").read_text())
    assert speed["student"]["layers"] == 2 and speed["teacher"]["layers"] == 4

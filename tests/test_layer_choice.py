"""Teacher layers chosen from data: each rule on teachers whose answer is known by construction."""

from pathlib import Path

import datasets
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

from trainables.data import DataConfig, load_split, task_spec
from trainables.strategies.data_driven import block_influence, calibration_rows, choose_layers, greedy_drop
from trainables.tiny import write_sentiment_task, write_tiny_encoder

IDENTITY = (2, 5)  # 1-based layers made to pass their input through unchanged


def identity_teacher(tokenizer: BertTokenizer, depth: int = 6) -> BertForSequenceClassification:
    """A random 6-layer BERT whose layers 2 and 5 add nothing to their input: with both residual
    branches zeroed, a layer only re-normalises an input that its predecessor already normalised."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=depth,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=0.3,
        num_labels=2,
    )
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for layer in IDENTITY:
            block = model.bert.encoder.layer[layer - 1]
            for dense in (block.attention.output.dense, block.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[BertForSequenceClassification, BertTokenizer, datasets.Dataset]:
    root = tmp_path_factory.mktemp("layer-choice")
    tokenizer = BertTokenizer.from_pretrained(write_tiny_encoder(root / "vocab"))
    paths = write_sentiment_task(root / "data")
    data = DataConfig(task="sst2", train=paths["train"], validation=paths["validation"], max_length=32)
    rows = calibration_rows(load_split(data, data.train, None, tokenizer), 128, 0)
    teacher = identity_teacher(tokenizer)
    return teacher, tokenizer, _labelled_by(teacher, tokenizer, rows)


def _labelled_by(teacher, tokenizer, rows: datasets.Dataset) -> datasets.Dataset:
    """The rows labelled with the teacher's own predictions: the full teacher fits them best."""
    from trainables import loop

    device = torch.device("cpu")
    predicted = []
    with torch.no_grad():
        for batch in loop.make_loader(rows, tokenizer, 64, device):
            predicted += teacher(**loop.model_inputs(batch)).logits.argmax(-1).tolist()
    return rows.remove_columns("labels").add_column("labels", predicted)


def test_calibration_rows_are_a_fixed_sample_of_the_training_rows(world) -> None:
    _, _, rows = world
    assert len(rows) == 128 and len(set(rows["example_index"])) == 128


def test_identity_layers_have_no_block_influence(world) -> None:
    teacher, tokenizer, rows = world
    from trainables import loop

    batches = list(loop.make_loader(rows, tokenizer, 32, torch.device("cpu")))
    scores = block_influence(teacher, batches, torch.device("cpu"))
    assert all(scores[layer] < 1e-5 for layer in IDENTITY)
    assert min(score for layer, score in scores.items() if layer not in IDENTITY) > 1e-2


@pytest.mark.parametrize("strategy", ["auto:bi", "auto:drop"])
def test_both_rules_drop_exactly_the_identity_layers(world, strategy: str) -> None:
    teacher, tokenizer, rows = world
    choice = choose_layers(strategy, teacher, rows, tokenizer, 4, task_spec("sst2"))
    assert choice.layers == [1, 3, 4, 6]
    assert set(choice.scores) == set(range(1, 7)) and choice.seconds > 0


def test_drop_removes_the_identity_layers_at_no_cost(world) -> None:
    """Without an identity layer the teacher computes the same function, so its loss is unchanged."""
    teacher, tokenizer, rows = world
    choice = choose_layers("auto:drop", teacher, rows, tokenizer, 4, task_spec("sst2"))
    first, second = choice.steps
    full_loss = second[5]  # removing layer 5 after layer 2 leaves the full teacher's function
    assert first[2] == pytest.approx(first[5]) == pytest.approx(full_loss, rel=1e-5)
    assert min(loss for layer, loss in first.items() if layer not in IDENTITY) > full_loss + 1e-3


def test_greedy_drop_recomputes_each_step() -> None:
    """Layers 4 and 5 are cheap to remove alone but costly together, so after removing 2 and 4 the
    next removal is 3, not 5: the greedy rule re-measures every candidate at every step."""
    penalty = {1: 5.0, 2: 0.1, 3: 3.0, 4: 0.2, 5: 1.0, 6: 4.0}

    def loss_of(layers: list[int]) -> float:
        removed = set(penalty) - set(layers)
        return sum(penalty[layer] for layer in removed) + (10.0 if {4, 5} <= removed else 0.0)

    kept, steps = greedy_drop(loss_of, 6, 3)
    assert kept == [1, 5, 6]
    assert [min(step, key=step.get) for step in steps] == [2, 4, 3]
    assert steps[2][5] == pytest.approx(0.1 + 0.2 + 1.0 + 10.0)


def test_greedy_drop_breaks_ties_towards_the_shallower_layer() -> None:
    kept, _ = greedy_drop(lambda layers: 0.0, 4, 2)
    assert kept == [3, 4]


def test_an_unknown_data_driven_rule_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from trainables.errors import ConfigError
    from trainables.strategies.registry import rule_layers

    assert rule_layers("auto:bi", 6, 3) is None
    with pytest.raises(ConfigError, match="Unknown layer strategy 'auto:cka'"):
        rule_layers("auto:cka", 6, 3)

"""The task registry and tasks declared in a study's YAML: their data from CSV, JSON lines, parquet or a
hub dataset, every bad declaration refused before Ray with the fix named, and the declared task carried
unchanged to every trial and into study.yaml."""

import json
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from transformers import BertTokenizer

from sweep.config.stored import stored_study, write_study_file
from sweep.config.study import resolve
from sweep.config.trial import trial_config
from sweep.run import main
from tests.test_bad_input import refused
from trainables import metrics, tasks
from trainables.config import TrialConfig
from trainables.data import (
    DataConfig,
    HubSource,
    check_train_classes,
    class_counts,
    hub_source,
    load_rows,
    load_task_data,
    split_labels,
)
from trainables.distill import run_trial
from trainables.errors import ConfigError
from trainables.tasks import GLUE_HUB, TaskSpec, get_task, register_task, task_spec
from trainables.teacher import TeacherConfig, finetune_teacher, load_teacher
from trainables.tiny import (
    write_labelled_classifier,
    write_sentiment_task,
    write_tiny_encoder,
)

PARAPHRASE = {
    "name": "paraphrase",
    "text": ["left", "right"],
    "label": "same",
    "labels": ["different", "same"],
    "metrics": ["f1", "accuracy"],
}
SIMILARITY = {"name": "similarity", "text": ["a", "b"], "label": "score", "regression": True}
CLASS_NAMES = {0: "different", 1: "same"}


def paraphrase_files(folder: Path, suffix: str = ".csv") -> dict[str, str]:
    """The tiny task in the paraphrase task's own columns (left, right, same), its labels written as
    class names; one file per split."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, path in write_sentiment_task(folder.with_name(f"{folder.name}-glue"), task="mrpc").items():
        rows = pd.read_json(path, lines=True)
        frame = pd.DataFrame(
            {"left": rows["sentence1"], "right": rows["sentence2"], "same": rows["label"].map(CLASS_NAMES)}
        )
        paths[split] = str(folder / f"{split}{suffix}")
        frame.to_parquet(paths[split]) if suffix == ".parquet" else frame.to_csv(paths[split], index=False)
    return paths


def similarity_files(folder: Path) -> dict[str, str]:
    """The tiny STS-B-shaped task in the similarity task's columns (a, b, score), as parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, path in write_sentiment_task(folder.with_name(f"{folder.name}-glue"), task="stsb").items():
        rows = pd.read_json(path, lines=True)
        frame = pd.DataFrame({"a": rows["sentence1"], "b": rows["sentence2"], "score": rows["label"]})
        paths[split] = str(folder / f"{split}.parquet")
        frame.to_parquet(paths[split])
    return paths


def write_csv(path: Path, rows: list[dict]) -> str:
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


# --- the registry ----------------------------------------------------------------------------------


def test_the_glue_tasks_are_registry_entries_with_their_hub_data() -> None:
    assert tasks.task_names() == ("mnli", "rte", "qnli", "wnli", "mrpc", "qqp", "sst2", "cola", "stsb")
    for name in tasks.task_names():
        spec = get_task(name)
        assert (spec.name, spec.hub, spec.hub_config, spec.label_column) == (name, GLUE_HUB, name, "label")
        assert not spec.declared and spec.metrics
    assert get_task("mnli").hub_splits[1:3] == ("validation_matched", "validation_mismatched")
    assert get_task("sst2").label_names == ("negative", "positive")
    with pytest.raises(ConfigError, match="Unknown task 'imdb'. Registered tasks: mnli, rte, qnli"):
        get_task("imdb")
    with pytest.raises(ValueError, match="'sst2' is registered already"):
        register_task(get_task("sst2"))


def test_a_new_task_is_one_registration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Registered once, the task is known by name to the data loader, the config and the trials."""
    monkeypatch.setattr(tasks, "_TASKS", tasks._TASKS.copy())
    register_task(TaskSpec("paraphrase-set", ("left", "right"), ("different", "same"), ("f1",), "same"))
    paths = paraphrase_files(tmp_path)
    assert load_rows("paraphrase-set", paths["train"])["label"][:3] == [1, 1, 1]
    data = DataConfig(task="paraphrase-set", train=paths["train"], validation=paths["validation"])
    data.validate()
    assert data.spec.main_metric == "f1"


def test_a_registered_task_is_checked_like_a_declared_one() -> None:
    with pytest.raises(ConfigError, match="pearson fits regression tasks only"):
        register_task(TaskSpec("bad", ("sentence",), ("no", "yes"), ("pearson",)))
    assert "bad" not in tasks.task_names()


# --- declaring a task --------------------------------------------------------------------------------


def test_a_declaration_becomes_a_task_spec() -> None:
    spec = task_spec(PARAPHRASE)
    assert spec == TaskSpec(
        "paraphrase", ("left", "right"), ("different", "same"), ("f1", "accuracy"), "same", declared=True
    )
    assert (spec.regression, spec.num_labels, spec.main_metric) == (False, 2, "f1")
    regression = task_spec(SIMILARITY)
    assert regression.regression and regression.metrics == (metrics.PEARSON, metrics.SPEARMAN)
    three = task_spec({"name": "nli", "text": ["p", "h"], "labels": ["yes", "maybe", "no"]})
    assert three.metrics == (metrics.ACCURACY,) and three.label_column == "label"


BAD_DECLARATIONS = {
    "a registered name": ({**PARAPHRASE, "name": "mrpc"}, "Write `task: mrpc` to use the registered one"),
    "labels and regression": ({**PARAPHRASE, "regression": True}, "Drop labels, or set regression: false"),
    "no labels": ({**PARAPHRASE, "labels": None}, "or set regression: true for scores"),
    "one label": ({**PARAPHRASE, "labels": ["same"]}, "needs two or more distinct class names"),
    "a repeated label": ({**PARAPHRASE, "labels": ["same", "same"]}, "needs two or more distinct"),
    "three text columns": ({**PARAPHRASE, "text": ["a", "b", "c"]}, "give one or two distinct columns"),
    "label among the texts": ({**PARAPHRASE, "label": "left"}, "is also a text column"),
    "an unknown metric": ({**PARAPHRASE, "metrics": ["f2"]}, "Unknown metric 'f2'. Registered metrics:"),
    "pearson on classes": (
        {**PARAPHRASE, "metrics": ["pearson"]},
        "pearson fits regression tasks only and paraphrase is a classification task (different, same). "
        "Choose metrics that fit it: accuracy, f1, matthews, glue_score",
    ),
    "f1 on three classes": (
        {**PARAPHRASE, "labels": ["a", "b", "c"]},
        "f1 fits two-class tasks only",
    ),
    "accuracy on scores": (
        {**SIMILARITY, "metrics": ["accuracy"]},
        "accuracy fits classification tasks only and similarity is a regression task. Choose metrics "
        "that fit it: pearson, spearman, glue_score",
    ),
    "a misspelt key": ({**PARAPHRASE, "lables": ["a", "b"]}, "Unknown task setting(s) ['lables']; known"),
    "text as one string": ({**PARAPHRASE, "text": "left"}, "data.task.text must be a list"),
}


@pytest.mark.parametrize("case", list(BAD_DECLARATIONS), ids=list(BAD_DECLARATIONS))
def test_a_bad_declaration_names_its_fix(case: str) -> None:
    declaration, message = BAD_DECLARATIONS[case]
    with pytest.raises(ConfigError) as raised:
        task_spec(declaration)
    assert message in str(raised.value)


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["README.md", "docs/your-data.md"])
def test_the_documented_declaration_is_a_valid_study(page: str) -> None:
    """The first YAML block of the page resolves to a study whose declared task has the columns, classes
    and metrics the block names."""
    text = (REPO / page).read_text()
    block = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    declared = block["data"]["task"]
    spec = task_spec(resolve(block).data.task)
    assert spec.declared and spec.name == declared["name"]
    assert spec.text_columns == tuple(declared["text"]) and spec.label_column == declared["label"]
    assert spec.label_names == tuple(declared["labels"]) and spec.metrics == tuple(declared["metrics"])


# --- the data of a declared task ---------------------------------------------------------------------


def test_labels_are_class_names_or_numbers(tmp_path: Path) -> None:
    rows = [
        {"left": "a film", "right": "the plot", "same": "same"},
        {"left": "a cast", "right": "the end", "same": "different"},
        {"left": "a film", "right": "the end", "same": 1},
        {"left": "a plot", "right": "the cast", "same": " different "},
    ]
    loaded = load_rows(PARAPHRASE, write_csv(tmp_path / "rows.csv", rows))
    assert loaded["label"] == [1, 0, 1, 0] and loaded.column_names == ["left", "right", "label"]
    numbers = load_rows(
        PARAPHRASE, write_csv(tmp_path / "n.csv", [{**r, "same": i % 2} for i, r in enumerate(rows)])
    )
    assert numbers["label"] == [0, 1, 0, 1]


def test_names_that_look_like_numbers_are_names_first(tmp_path: Path) -> None:
    """A star rating task whose classes are named "1" and "5": the file's 5 is the class named "5"."""
    stars = {"name": "stars", "text": ["review"], "label": "stars", "labels": ["1", "5"]}
    path = write_csv(tmp_path / "stars.csv", [{"review": "great", "stars": 5}, {"review": "bad", "stars": 1}])
    assert load_rows(stars, path)["label"] == [1, 0]


def test_a_parquet_file_loads_like_a_csv(tmp_path: Path) -> None:
    csv, parquet = paraphrase_files(tmp_path / "csv"), paraphrase_files(tmp_path / "pq", ".parquet")
    assert load_rows(PARAPHRASE, parquet["train"])["label"] == load_rows(PARAPHRASE, csv["train"])["label"]


def test_a_regression_task_takes_numbers_and_numbers_written_as_text(tmp_path: Path) -> None:
    rows = [{"a": "x", "b": "y", "score": 1.5}, {"a": "x", "b": "z", "score": "4"}]
    assert load_rows(SIMILARITY, write_csv(tmp_path / "s.csv", rows))["label"] == [1.5, 4.0]


BAD_ROWS = {
    "a missing column": (
        [{"left": "a", "right": "b", "label": "same"}],
        "lacks the paraphrase columns ['same']; it has ['left', 'right', 'label']. Name the file's own "
        "columns in data.task.text and data.task.label.",
    ),
    "a label outside the classes": (
        [{"left": "a", "right": "b", "same": "same"}, {"left": "a", "right": "c", "same": "maybe"}],
        "rows [1] have labels outside 0..1 (different, same): 'maybe'. A label is one of those class "
        "names or its number; fix those rows or list every class in data.task.labels.",
    ),
    "a class number outside the classes": (
        [{"left": "a", "right": "b", "same": 2}, {"left": "a", "right": "c", "same": 1}],
        "rows [0] have labels outside 0..1 (different, same): 2.",
    ),
    "an empty text": (
        [{"left": "a", "right": "b", "same": "same"}, {"left": "   ", "right": "c", "same": "same"}],
        "column 'left' has no text in rows [1]; remove those rows or give them text.",
    ),
    "a missing text": (
        [{"left": "a", "right": None, "same": "same"}, {"left": "b", "right": "c", "same": "same"}],
        "column 'right' has no text in rows [0]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ROWS), ids=list(BAD_ROWS))
def test_bad_rows_are_refused_with_their_fix(case: str, tmp_path: Path) -> None:
    rows, message = BAD_ROWS[case]
    with pytest.raises(ConfigError) as raised:
        load_rows(PARAPHRASE, write_csv(tmp_path / "rows.csv", rows))
    assert message in str(raised.value)


def test_a_regression_label_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    rows = [{"a": "x", "b": "y", "score": 2.0}, {"a": "x", "b": "z", "score": "high"}]
    with pytest.raises(
        ConfigError, match=r"rows \[1\] have no numeric similarity score in 'score' \(got 'high'\)"
    ):
        load_rows(SIMILARITY, write_csv(tmp_path / "s.csv", rows))


def test_a_split_name_needs_a_task_with_a_hub_dataset() -> None:
    with pytest.raises(ConfigError, match="paraphrase has no hub dataset of its own. Give a file, or a hub"):
        load_rows(PARAPHRASE, "train")


def test_hub_sources_map_to_the_hub_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registered task's split name is its hub dataset's split; a mapping names any hub dataset. The
    loader is asked for exactly that (no hub here: `datasets.load_dataset` is replaced)."""
    asked = []

    def fake_load(path: str, name: str | None = None, split: str | None = None) -> datasets.Dataset:
        asked.append((path, name, split))
        return datasets.Dataset.from_dict({"sentence": ["a good film"], "label": [1]})

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert hub_source("sst2", "validation") == HubSource(GLUE_HUB, "validation", "sst2")
    assert load_rows("sst2", "train")["label"] == [1]
    review = {"name": "review", "text": ["sentence"], "labels": ["bad", "good"]}
    assert load_rows(review, {"hub": "someone/reviews", "config": "en", "split": "dev"})["label"] == [1]
    assert asked == [(GLUE_HUB, "sst2", "train"), ("someone/reviews", "en", "dev")]
    with pytest.raises(
        ConfigError, match=r"Unknown data source setting\(s\) \['splt'\]; known ones: \['config'"
    ):
        load_rows(review, {"hub": "someone/reviews", "splt": "dev"})


def test_a_local_dataset_folder_is_a_hub_source(tmp_path: Path) -> None:
    """`datasets` reads a folder of files as a dataset, its splits named by the files."""
    paths = paraphrase_files(tmp_path / "folder")
    source = {"hub": str(tmp_path / "folder"), "split": "validation"}
    expected = pd.read_csv(paths["validation"])["same"].map({"different": 0, "same": 1}).tolist()
    assert load_rows(PARAPHRASE, source)["label"] == expected
    with pytest.raises(ConfigError, match="The dataset folder /nowhere/data does not exist"):
        load_rows(PARAPHRASE, {"hub": "/nowhere/data", "split": "train"})


def test_class_counts_are_those_of_the_rows_each_split_uses(tmp_path: Path) -> None:
    """The labels the checks count are those of the rows the trials load: the training subset after
    the rows held out for selection, and the selection rows."""
    paths = paraphrase_files(tmp_path)
    data = DataConfig(
        task=PARAPHRASE,
        train=paths["train"],
        validation=paths["validation"],
        selection=paths["train"],
        selection_size=100,
        train_size=300,
        data_seed=3,
    )
    found = {split.title: labels for split, labels in split_labels(data)}
    assert list(found) == ["train", "validation", "selection"]
    tokenizer = BertTokenizer.from_pretrained(write_tiny_encoder(tmp_path / "encoder"))
    loaded = load_task_data(data, tokenizer)
    assert found["train"].tolist() == loaded.train["labels"] and len(found["train"]) == 300
    for title, rows in (("validation", loaded.validation), ("selection", loaded.selection)):
        assert sorted(found[title].tolist()) == sorted(rows["labels"])
    names = pd.read_csv(paths["validation"])["same"].value_counts()
    assert class_counts(data.spec, found["validation"]) == {
        "different": names["different"],
        "same": names["same"],
    }


def test_a_class_absent_from_the_training_rows_is_refused() -> None:
    spec = task_spec(PARAPHRASE)
    train = DataConfig(task=PARAPHRASE, train="t.csv", train_size=50).splits()[0]
    with pytest.raises(ConfigError, match=r"the 3 rows drawn from the training source t.csv hold no row"):
        check_train_classes(spec, train, np.array([1, 1, 1]))
    check_train_classes(spec, train, np.array([1, 0, 1]))


# --- a declared task travels as plain values ------------------------------------------------------


def test_a_declared_task_reaches_the_trials_and_study_yaml_unchanged(tmp_path: Path) -> None:
    paths = paraphrase_files(tmp_path / "data")
    config = resolve(
        {"data": {"task": PARAPHRASE, **paths}, "storage_path": str(tmp_path), "name": "p"},
        {"preset": "smoke"},
    )
    config.check()
    shipped = trial_config(config, "teacher", "odd").to_dict()
    assert shipped["data"]["task"] == PARAPHRASE
    yaml.safe_dump(shipped)  # plain values only
    assert TrialConfig.from_dict(shipped).data.task == PARAPHRASE
    write_study_file(config)
    again = stored_study(config.local_dir)
    assert again.data.task == PARAPHRASE and again.data == config.data
    assert again.ranked_metric == "eval_f1"


# --- a teacher is matched to a declared task's classes by name -----------------------------------


def test_a_teacher_naming_the_classes_in_another_order_is_reordered(tmp_path: Path) -> None:
    declared = {"name": "nli-words", "text": ["p", "h"], "labels": ["yes", "maybe", "no"]}
    model = write_labelled_classifier(tmp_path, {0: "No", 1: "maybe", 2: "YES"})
    batch = torch.tensor([[2, 7, 8, 9, 3], [2, 10, 11, 12, 3]])
    logits = model(input_ids=batch).logits.detach()
    teacher, _, _ = load_teacher(str(tmp_path), declared)
    torch.testing.assert_close(teacher(input_ids=batch).logits.detach(), logits[:, [2, 1, 0]])
    assert teacher.config.id2label == {0: "yes", 1: "maybe", 2: "no"}
    with pytest.raises(
        ConfigError, match=r"names its labels \['no', 'maybe', 'yes'\], but the task's labels"
    ):
        load_teacher(str(tmp_path), {**declared, "labels": ["yes", "perhaps", "no"]})


# --- before Ray: the dry run counts the classes, and bad data exits 2 -----------------------------


def study_yaml(tmp_path: Path, task: dict, paths: dict[str, str], **more) -> str:
    values = {
        "preset": "smoke",
        "name": "declared",
        "storage_path": str(tmp_path / "runs"),
        "strategies": ["bottom", "scratch"],
        "data": {"task": task, **paths},
        **more,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_the_dry_run_shows_each_splits_classes_and_the_baseline(tmp_path: Path, capsys) -> None:
    paths = paraphrase_files(tmp_path / "data")
    assert main(["--config", study_yaml(tmp_path, PARAPHRASE, paths), "--dry-run"]) == 0
    out = capsys.readouterr().out
    counts = {split: pd.read_csv(path)["same"].value_counts() for split, path in paths.items()}
    shown = "; ".join(f"{split} {count['different']}/{count['same']}" for split, count in counts.items())
    assert f"Labels (rows per class, different/same): {shown}" in out
    majority = counts["train"].idxmax()
    scores = []
    for split in ("validation", "test"):
        positives, rows = counts[split]["same"], counts[split].sum()
        share = counts[split][majority] / rows
        f1 = 2 * positives / (rows + positives) if majority == "same" else 0.0  # precision p/n, recall 1
        scores.append(f"{split} f1 {f1:.4f}, accuracy {share:.4f}")
    assert f"Baseline (always {majority}, the most common training class): {'; '.join(scores)}" in out
    assert "Data (paraphrase)" in out and "fine-tuned on paraphrase" in out


def test_the_dry_run_of_a_regression_task_shows_the_scores(tmp_path: Path, capsys) -> None:
    paths = similarity_files(tmp_path / "data")
    assert main(["--config", study_yaml(tmp_path, SIMILARITY, paths), "--dry-run"]) == 0
    out = capsys.readouterr().out
    train = pd.read_parquet(paths["train"])["score"]
    assert f"train 512 rows, mean {train.mean():.3g}, s.d. {train.std(ddof=0):.3g}" in out
    assert (
        f"Baseline (always {train.mean():.4g}, the training mean): validation pearson 0.0000, spearman 0.0000"
        in out
    )


BAD_STUDIES = {
    "a column the files lack": (
        {"label": "is_same"},
        "lacks the paraphrase columns ['is_same']",
    ),
    "a label outside the declared classes": (
        {"labels": ["different", "equal"]},
        "have labels outside 0..1 (different, equal): 'same'",
    ),
    "pearson on classes": ({"metrics": ["pearson"]}, "pearson fits regression tasks only"),
    "a registered name": ({"name": "mrpc"}, "the name of a registered task"),
}


@pytest.mark.parametrize("case", list(BAD_STUDIES), ids=list(BAD_STUDIES))
def test_a_bad_declaration_stops_the_study_before_ray(case: str, tmp_path: Path, capsys) -> None:
    change, message = BAD_STUDIES[case]
    paths = paraphrase_files(tmp_path / "data")
    refused(capsys, ["--config", study_yaml(tmp_path, {**PARAPHRASE, **change}, paths), "--dry-run"], message)


def test_bad_rows_stop_the_study_before_ray(tmp_path: Path, capsys) -> None:
    paths = paraphrase_files(tmp_path / "data")
    frame = pd.read_csv(paths["validation"])
    frame.loc[7, "right"] = ""
    frame.to_csv(paths["validation"], index=False)
    args = ["--config", study_yaml(tmp_path, PARAPHRASE, paths), "--dry-run"]
    refused(capsys, args, "column 'right' has no text in rows [7]; remove those rows or give them text.")


def test_a_class_missing_from_the_training_rows_stops_the_study(tmp_path: Path, capsys) -> None:
    paths = paraphrase_files(tmp_path / "data")
    frame = pd.read_csv(paths["train"])
    frame[frame["same"] == "same"].to_csv(paths["train"], index=False)
    args = ["--config", study_yaml(tmp_path, PARAPHRASE, paths), "--dry-run"]
    refused(capsys, args, "hold no row of the class(es) ['different'] (of different, same)")


def test_a_regression_label_that_is_not_a_number_stops_the_study(tmp_path: Path, capsys) -> None:
    paths = similarity_files(tmp_path / "data")
    frame = pd.read_parquet(paths["test"]).astype({"score": object})
    frame.loc[3, "score"] = "high"
    paths["test"] = str(tmp_path / "data" / "test.jsonl")
    frame.to_json(paths["test"], orient="records", lines=True)
    args = ["--config", study_yaml(tmp_path, SIMILARITY, paths), "--dry-run"]
    refused(capsys, args, "rows [3] have no numeric similarity score in 'score' (got 'high')")


# --- declared tasks trained end to end -------------------------------------------------------------


def test_a_declared_regression_task_trains_a_teacher_and_a_student(tmp_path: Path) -> None:
    paths = similarity_files(tmp_path / "data")
    data = DataConfig(task=SIMILARITY, **paths, max_length=32)
    base = write_tiny_encoder(tmp_path / "base")
    settings = TeacherConfig(base=base, data=data, epochs=4, lr=3e-3, batch_size=16, warmup_ratio=0.0)
    info = finetune_teacher(settings, tmp_path / "teacher")
    assert info["task"] == "similarity" and info["eval_pearson"] > 0.7
    trial = TrialConfig(
        teacher=str(tmp_path / "teacher"), data=data, strategy="bottom", student_layers=2, epochs=1, lr=3e-3
    )
    (last,) = run_trial(trial)
    # One label in ten is flipped, so even a perfect model correlates at about 0.76.
    assert last["eval_pearson"] > 0.5 and last["teacher_pearson"] == pytest.approx(info["eval_pearson"])
    for where in ("eval", "test"):
        assert last[f"baseline_{where}_pearson"] == 0.0 == last[f"baseline_{where}_spearman"]
        assert last[f"{where}_collapsed"] is False


@pytest.mark.ray
def test_a_declared_csv_task_runs_a_study_end_to_end(tmp_path: Path) -> None:
    """Its own columns and class names, no code: the study ranks it by F1 against the F1 of always
    predicting the most common class, and flags the students that predict one class for every pair."""
    paths = paraphrase_files(tmp_path / "data")
    config = study_yaml(
        tmp_path,
        PARAPHRASE,
        paths,
        stages=["replicate"],
        strategies=["bottom", "odd", "scratch"],
        replicate={"seeds": 2},
        resources={"cpus": 2},
    )
    assert main(["--config", config]) == 0
    study = tmp_path / "runs" / "declared"
    assert yaml.safe_load((study / "study.yaml").read_text())["data"]["task"] == PARAPHRASE

    counts = {split: pd.read_csv(path)["same"].value_counts() for split, path in paths.items()}
    assert counts["train"].idxmax() == "same"
    positives, rows = counts["validation"]["same"], counts["validation"].sum()
    floor = 2 * positives / (rows + positives)  # always "same": precision positives / rows, recall 1
    record = json.loads((study / "teacher" / "stage.json").read_text())
    assert record["task"] == "paraphrase" and record["baselines"]["eval_f1"] == pytest.approx(floor)
    assert record["baselines"]["eval_accuracy"] == pytest.approx(positives / rows)

    trials = pd.read_csv(study / "trials.csv")
    assert len(trials) == 6 and set(trials["status"]) == {"TERMINATED"}
    assert trials["baseline_eval_f1"].to_numpy() == pytest.approx([floor] * 6)
    ranking = pd.read_csv(study / "ranking.csv").set_index("strategy")
    assert ranking["metric"].unique().tolist() == ["eval_f1"]
    assert ranking["baseline_score"].to_numpy() == pytest.approx([floor] * 3)
    flags = trials.groupby("strategy")["eval_collapsed"].sum()
    assert ranking["n_collapsed"].to_dict() == flags.to_dict()
    # A collapsed student predicts one class: the floor ("same" everywhere) or 0 ("different").
    collapsed = trials.loc[trials["eval_collapsed"], "eval_f1"]
    assert all(value == pytest.approx(floor) or value == 0.0 for value in collapsed)
    # On this data and these seeds the scratch students learn only the majority class.
    assert ranking.loc["scratch", "n_collapsed"] == 2 and ranking.loc["bottom", "n_collapsed"] == 0
    gain = (ranking["mean"] - ranking["baseline_score"]) / (
        ranking["teacher_score"] - ranking["baseline_score"]
    )
    assert ranking["retention_above_baseline"].to_numpy() == pytest.approx(gain.to_numpy())
    assert ranking.loc["scratch", "retention_above_baseline"] == pytest.approx(0.0, abs=1e-9)

    report = (study / "report.md").read_text()
    assert "- Task: paraphrase\n" in report and "scratch learnt nothing" in report
    exported = json.loads((study / "best_student" / "config.json").read_text())
    assert exported["id2label"] == {"0": "different", "1": "same"}

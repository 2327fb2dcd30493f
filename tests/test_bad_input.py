"""Bad input, as a hostile new user would try it: every kind is refused before Ray starts, with exit
status 2 and a one-paragraph message naming what is wrong. Where the intent is unambiguous (a number
written as text), the value is taken as meant, and the valid controls pass."""

import fcntl
import os
import time
from pathlib import Path

import pytest
import yaml

from sweep.run import main
from tests.conftest import smoke_args
from trainables.vocabulary import StudyLayout


def refused(capsys, args: list[str], message: str) -> None:
    """Exit 2, the message, one paragraph, no traceback, and Ray never started."""
    import ray

    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err
    assert not ray.is_initialized()


def with_yaml(world: dict, tmp_path: Path, values: dict, *more: str) -> list[str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"preset": "smoke", **values}))
    return smoke_args(world, tmp_path, "--config", str(path), *more)


BAD_YAML = {
    "temperature as text": (
        {"trial": {"temperature": "abc"}},
        "trial.temperature must be a number, got 'abc'",
    ),
    "student layers with a fraction": (
        {"trial": {"student_layers": 1.5}},
        "student_layers must be a whole number",
    ),
    "range bound as text": (
        {"search": {"space": {"lr": {"min": "abc", "max": 1}}}},
        "space.lr.min must be a number",
    ),
    "extra validation as a list": (
        {"data": {"extra_validation": ["a", "b"]}},
        "extra_validation must be a mapping",
    ),
    "unknown tiny setting": ({"tiny": {"foo": 1}}, "Unknown tiny setting(s) ['foo']"),
    "one-layer tiny encoder": ({"tiny": {"layers": 1}}, "tiny.layers must be at least 2, got 1"),
    "temperature nan": ({"trial": {"temperature": float("nan")}}, "temperature must be a finite number"),
    "temperature inf": ({"trial": {"temperature": float("inf")}}, "temperature must be a finite number"),
    "alpha nan": ({"trial": {"alpha_ce": float("nan")}}, "alpha_ce must be a finite number"),
    "lr nan": ({"trial": {"lr": float("nan")}}, "trial.lr must be a finite number"),
    "lr absurd": ({"trial": {"lr": 1.0e6}}, "trial.lr must be at most 1.0"),
    "batch size with a fraction": (
        {"trial": {"batch_size": 2.5}},
        "batch_size must be a whole number, got 2.5",
    ),
    "negative weight decay": ({"trial": {"weight_decay": -5}}, "weight_decay must be at least 0, got -5"),
    "data seed as text": ({"data": {"data_seed": "abc"}}, "data.data_seed must be a whole number"),
    "negative cache size": ({"trial": {"cache_memory_mb": -1}}, "cache_memory_mb must be at least 0"),
    "no concurrent trials": (
        {"resources": {"max_concurrent_trials": 0}},
        "max_concurrent_trials must be at least 1",
    ),
    "negative gradient clip": ({"trial": {"max_grad_norm": -1}}, "max_grad_norm must be > 0, got -1"),
    "strategies as one string": ({"strategies": "bottom"}, "study.strategies must be a list, got 'bottom'"),
    "stages as one string": ({"stages": "search"}, "study.stages must be a list, got 'search'"),
    "faults as one string": ({"faults": "oops"}, "study.faults must be a list, got 'oops'"),
    "misspelt metric": ({"metric": "eval_acuracy"}, "metric 'eval_acuracy' is not one the trials report"),
    "test metric": ({"metric": "test_accuracy"}, "use python -m analysis.rank --metric test_<metric>"),
    "auto with more calibration rows than training rows": (
        {"strategies": ["odd", "auto:bi"], "teacher": {"calibration_size": 10000}},
        "calibration_size is 10000, but the students train on 512 rows",
    ),
    "selection on the ranking rows": (
        {"data": {"selection": "validation_mismatched"}, "stages": ["search"]},
        "would select on the rows the strategies are ranked on",
    ),
}


def test_a_data_section_that_is_not_a_mapping(world: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"preset": "smoke", "data": 5}))
    refused(capsys, ["--config", str(path), "--dry-run"], "study.data must be a mapping of settings, got 5")


@pytest.mark.parametrize("case", list(BAD_YAML), ids=list(BAD_YAML))
def test_bad_yaml_values(case: str, world: dict, tmp_path: Path, capsys) -> None:
    values, message = BAD_YAML[case]
    if case == "selection on the ranking rows":
        values = {**values, "data": {"selection": world["validation"]}}
    refused(capsys, with_yaml(world, tmp_path, values, "--dry-run"), message)


BAD_FLAGS = {
    "cpus nan": (["--cpus", "nan"], "resources.cpus must be a finite number"),
    "cpus zero": (["--cpus", "0"], "resources.cpus must be at least 1, got 0"),
    "half a cpu": (["--cpus", "0.5", "--cpus-per-trial", "0.5"], "resources.cpus must be a whole number"),
    "name leaving the storage": (["--name", "a/../../b"], "must be a plain folder name"),
    "teacher file for a folder": (["--teacher", "__FILE__"], "is a file, not a model folder"),
    "data folder for a file": (["--train", "__FOLDER__/x.jsonl"], "is a folder"),
    "empty data file": (["--validation", "__EMPTY__"], "is empty: it holds no rows"),
}


@pytest.mark.parametrize("case", list(BAD_FLAGS), ids=list(BAD_FLAGS))
def test_bad_flags(case: str, world: dict, tmp_path: Path, capsys) -> None:
    flags, message = BAD_FLAGS[case]
    (tmp_path / "folder" / "x.jsonl").mkdir(parents=True)
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "file").write_text("not a model")
    swap = {
        "__FILE__": str(tmp_path / "file"),
        "__FOLDER__": str(tmp_path / "folder"),
        "__EMPTY__": str(tmp_path / "empty.jsonl"),
    }
    for placeholder, path in swap.items():
        flags = [flag.replace(placeholder, path) for flag in flags]
    refused(capsys, smoke_args(world, tmp_path, "--dry-run", *flags), message)


def test_a_classifier_with_another_label_count_is_refused_before_ray(
    tmp_path: Path, world: dict, capsys
) -> None:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    three_way = BertForSequenceClassification(
        BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=4, num_attention_heads=2, num_labels=3)
    )
    three_way.save_pretrained(tmp_path / "mnli-teacher")
    BertTokenizer.from_pretrained(world["encoder"]).save_pretrained(tmp_path / "mnli-teacher")
    args = smoke_args(world, tmp_path, "--teacher", str(tmp_path / "mnli-teacher"))
    refused(capsys, args, "is a 3-way classifier but sst2 has 2 labels")


def test_a_config_of_random_bytes(world: dict, tmp_path: Path, capsys) -> None:
    (tmp_path / "noise.yaml").write_bytes(os.urandom(512) + b"\xff\xfe")
    refused(
        capsys,
        smoke_args(world, tmp_path, "--dry-run", "--config", str(tmp_path / "noise.yaml")),
        "Cannot read",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\xff binary", "is not a readable study file"),
        (b"", "is not a readable study file"),
        (b"preset: smoke\nname: cut\nstages: [sea", "is not a readable study file"),
        (b"preset: smoke\nname: smoke\nfoo: 1\n", "Unknown study setting(s) ['foo']"),
    ],
    ids=["binary", "empty", "cut off", "unknown key"],
)
def test_resuming_a_damaged_study_file(content: bytes, message: str, tmp_path: Path, capsys) -> None:
    study = tmp_path / "smoke"
    study.mkdir()
    (study / "study.yaml").write_bytes(content)
    refused(capsys, ["--resume", str(study)], message)


@pytest.mark.parametrize("storage", ["/proc/kd-study", "__FILE__"], ids=["under /proc", "a regular file"])
def test_an_unwritable_storage_path(storage: str, world: dict, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("")
    storage = storage.replace("__FILE__", str(tmp_path / "file"))
    args = smoke_args(world, tmp_path)
    args[args.index("--storage-path") + 1] = storage
    refused(capsys, args, "Cannot write the study folder")


def test_a_cluster_address_where_nothing_listens_fails_within_seconds(
    world: dict, tmp_path: Path, capsys
) -> None:
    started = time.perf_counter()
    refused(
        capsys,
        smoke_args(world, tmp_path, "--address", "127.0.0.1:1"),
        "No Ray cluster answers at --address 127.0.0.1:1",
    )
    assert time.perf_counter() - started < 30


def test_a_study_folder_in_use_by_another_run_is_refused(world: dict, tmp_path: Path, capsys) -> None:
    """Two runs started with the same name: the second finds the first's lock and touches nothing."""
    folder = tmp_path / "smoke"
    folder.mkdir()
    with StudyLayout(folder, str(folder)).lock_file.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 12345")
        held.flush()
        refused(capsys, smoke_args(world, tmp_path), "is in use by another run of this study (pid 12345)")
    assert not (folder / "study.yaml").exists()


def test_unambiguous_values_written_as_text_are_taken_as_meant(world: dict, tmp_path: Path, capsys) -> None:
    """YAML reads 1e-4 as a string; '2' can only mean two layers."""
    values = {"trial": {"lr": "1e-4", "student_layers": "2"}, "stages": ["replicate"]}
    code = main(with_yaml(world, tmp_path, values, "--dry-run", "--format", "json"))
    planned = yaml.safe_load(capsys.readouterr().out)
    assert code == 0 and {trial["lr"] for trial in planned} == {1e-4}
    assert {trial["student_layers"] for trial in planned} == {2}


@pytest.mark.parametrize(
    "flags",
    [[], ["--stage", "replicate", "--seeds", "3,5"], ["--strategies", "odd", "auto:bi", "auto:drop"]],
    ids=["smoke", "seed list", "data-driven strategies"],
)
def test_valid_controls_pass(flags: list[str], world: dict, tmp_path: Path, capsys) -> None:
    assert main(smoke_args(world, tmp_path, "--dry-run", *flags)) == 0, capsys.readouterr().err

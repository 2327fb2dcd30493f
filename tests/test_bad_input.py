"""Bad input, as a hostile new user would try it: every kind is refused before Ray starts, with exit
status 2 and a one-paragraph message naming what is wrong. Where the intent is unambiguous (a number
written as text), the value is taken as meant, and the valid controls pass."""

import fcntl
import os
import shutil
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


# --- every flag: empty, a folder for a file (or a file for a folder), out of range ----------------


def _placeholders(world: dict, tmp_path: Path) -> dict[str, str]:
    """Paths the tables below name: a folder, a plain file, a copy of the training file, a folder
    that is no model, and a YAML file."""
    (tmp_path / "folder").mkdir(exist_ok=True)
    (tmp_path / "not-a-model").mkdir(exist_ok=True)
    (tmp_path / "file").write_text("text")
    (tmp_path / "train-copy.jsonl").write_text(Path(world["train"]).read_text())
    return {
        "__FOLDER__": str(tmp_path / "folder"),
        "__FILE__": str(tmp_path / "file"),
        "__NOT_A_MODEL__": str(tmp_path / "not-a-model"),
        "__TRAIN__": world["train"],
        "__TRAIN_COPY__": str(tmp_path / "train-copy.jsonl"),
        "__MISSING__": str(tmp_path / "missing.yaml"),
    }


def _filled(flags: list[str], swap: dict[str, str]) -> list[str]:
    for placeholder, path in swap.items():
        flags = [flag.replace(placeholder, path) for flag in flags]
    return flags


EVERY_FLAG = {
    "empty preset": (["--preset", ""], "Unknown preset ''"),
    "empty name": (["--name", ""], "study.name is empty text"),
    "blank name": (["--name", "   "], "study.name is empty text"),
    "name '.'": (["--name", "."], "starting with a letter or digit"),
    "name '..'": (["--name", ".."], "starting with a letter or digit"),
    "name of 300 characters": (["--name", "s" * 300], "takes folder names of at most 255"),
    "empty storage path": (["--storage-path", ""], "study.storage_path is empty text"),
    "storage path that is a file": (["--storage-path", "__FILE__"], "is a file, not a folder"),
    "storage path under /proc": (["--storage-path", "/proc/kd-study"], "Cannot write the study folder"),
    "unknown stage": (
        ["--stage", "train"],
        "argument --stage: invalid choice: 'train' (choose from 'search', 'replicate', 'both')",
    ),
    "empty strategies": (["--strategies", ""], "No strategies given"),
    "strategies of blanks": (["--strategies", " , "], "No strategies given"),
    "no search samples": (["--num-samples", "0"], "search.num_samples must be at least 1, got 0"),
    "a million search samples": (["--num-samples", "1000000"], "search.num_samples must be at most 10000"),
    "empty seeds": (["--seeds", ""], "invalid seeds ''"),
    "a hundred thousand seeds": (["--seeds", "100000"], "replicate.seeds must be at most 10000"),
    "a seed of 2**64": (["--seeds", "18446744073709551616,"], "seeds.0 must be < 4294967296"),
    "a negative seed": (["--seeds=-1,"], "seeds.0 must be at least 0, got -1"),
    "max failures below -1": (["--max-failures", "-2"], "max_failures must be at least -1, got -2"),
    "no checkpoints kept": (["--keep-checkpoints", "0"], "keep_checkpoints must be at least 1, got 0"),
    "empty teacher": (["--teacher", ""], "study.teacher.base is empty text"),
    "teacher folder that is no model": (["--teacher", "__NOT_A_MODEL__"], "Cannot read the model config"),
    "student deeper than the teacher": (["--student-layers", "99"], "between 1 and 3 layers"),
    "no epochs": (["--epochs", "0"], "trial.epochs must be at least 1, got 0"),
    "empty task": (["--task", ""], "study.data.task is empty text"),
    **{
        f"empty {split}": ([f"--{split}", ""], f"study.data.{split} is empty text")
        for split in ("train", "validation", "test", "selection")
    },
    "training file name too long for the file system": (
        ["--train", "t" * 300 + ".jsonl"],
        "is too long for the file system (File name too long); give a shorter one",
    ),
    "training data that is a folder": (["--train", "__FOLDER__"], "is a folder; give a .jsonl"),
    "training data that is a file of another kind": (["--train", "__FILE__"], "is a suffix-less file"),
    "validation set that is the training file": (["--validation", "__TRAIN__"], "is the training file"),
    "test set that is the training file": (["--test", "__TRAIN__"], "is the training file"),
    "validation set that copies the training rows": (
        ["--validation", "__TRAIN_COPY__"],
        "Every one of the 512 validation rows",
    ),
    "no training rows": (["--train-size", "0"], "data.train_size must be at least 1, got 0"),
    "negative validation size": (["--validation-size", "-1"], "validation_size must be at least 1"),
    "every training row held out": (
        ["--selection", "__TRAIN__", "--selection-size", "100000"],
        "No training rows are left",
    ),
    "empty address": (["--address", ""], "study.resources.address is empty text"),
    "address without a port": (["--address", "localhost"], "is not host:port"),
    "address with a port beyond 65535": (["--address", "127.0.0.1:99999"], "is not host:port"),
    "no CPUs": (["--cpus", "0"], "resources.cpus must be at least 1, got 0"),
    "half a GPU for the instance": (["--gpus", "0.5"], "a local Ray instance has whole GPUs"),
    "negative GPUs": (["--gpus", "-1"], "resources.gpus must be at least 0"),
    "no CPU per trial": (["--cpus-per-trial", "0"], "cpus_per_trial must be > 0, got 0"),
    "negative GPUs per trial": (["--gpus-per-trial", "-1"], "gpus_per_trial must be at least 0"),
    "no concurrent trials": (["--max-concurrent-trials", "0"], "max_concurrent_trials must be at least 1"),
    "empty config": (["--config", ""], "--config '' is empty"),
    "config that is a folder": (["--config", "__FOLDER__"], "is a folder: give the path of a YAML file"),
    "config that does not exist": (["--config", "__MISSING__"], "does not exist"),
    "empty resume folder": (["--resume", ""], "--resume '' names no folder"),
    "resume folder that is a file": (["--resume", "__FILE__"], "is a file, not a study folder"),
    "unknown output format": (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
}


@pytest.mark.parametrize("case", list(EVERY_FLAG), ids=list(EVERY_FLAG))
def test_every_flag_refuses_empty_misplaced_and_out_of_range_values(
    case: str, world: dict, tmp_path: Path, capsys
) -> None:
    flags, message = EVERY_FLAG[case]
    flags = _filled(flags, _placeholders(world, tmp_path))
    refused(capsys, smoke_args(world, tmp_path, "--dry-run", *flags), message)


EVERY_YAML_KEY = {
    "empty metric": ({"metric": ""}, "study.metric is empty text"),
    "blank name": ({"name": "  "}, "study.name is empty text"),
    "empty extra validation name": (
        {"data": {"extra_validation": {"": "x.jsonl"}}},
        "study.data.extra_validation key '' is empty text",
    ),
    "empty fault": ({"faults": [{"fault": ""}]}, "study.faults.0.fault is empty text"),
    "empty strategy in the list": ({"strategies": ["bottom", ""]}, "study.strategies.1 is empty text"),
    "sampler seed of 2**32": ({"search": {"sampler_seed": 2**32}}, "sampler_seed must be < 4294967296"),
    "search seed of 2**64": ({"search": {"seed": 2**64}}, "search.seed must be < 4294967296"),
    "data seed of 2**32": ({"data": {"data_seed": 2**32}}, "data.data_seed must be < 4294967296"),
    "teacher seed below 0": ({"teacher": {"seed": -1}}, "teacher.seed must be at least 0"),
    "tiny seed of 2**32": ({"tiny": {"seed": 2**32}}, "tiny.seed must be < 4294967296"),
    "search lr up to 10": (
        {"search": {"space": {"lr": [1.0e-3, 10.0]}}},
        "search.space.lr reaches 10.0: trial.lr must be at most 1.0, got 10.0. Narrow the range.",
    ),
    "a search that samples nothing": (
        {
            "search": {
                "space": {"temperature": 2, "alpha_ce": 0.5, "alpha_kd": 0.5, "alpha_cos": 0, "lr": 0.003}
            }
        },
        "search.space samples nothing",
    ),
    "max length beyond the teacher's positions": (
        {"data": {"max_length": 100}},
        "data.max_length is 100 tokens, but",
    ),
}


@pytest.mark.parametrize("case", list(EVERY_YAML_KEY), ids=list(EVERY_YAML_KEY))
def test_yaml_keys_refuse_empty_and_out_of_range_values(
    case: str, world: dict, tmp_path: Path, capsys
) -> None:
    values, message = EVERY_YAML_KEY[case]
    refused(capsys, with_yaml(world, tmp_path, values, "--dry-run"), message)


SENSIBLE_READINGS = {
    "subset larger than the file": (["--train-size", "100000"], "holds 512 rows: the study uses all 512"),
    "more CPUs than the machine": (["--cpus", "1000"], "is more than this machine's"),
    "a validation set sharing rows with the training rows": (
        ["--validation", "__HALF_TRAIN__"],
        "10 of the 20 validation rows are also training rows",
    ),
}


@pytest.mark.parametrize("case", list(SENSIBLE_READINGS), ids=list(SENSIBLE_READINGS))
def test_odd_values_with_a_sensible_reading_pass_with_a_warning(
    case: str, world: dict, tmp_path: Path, capsys
) -> None:
    flags, warning = SENSIBLE_READINGS[case]
    lines = (
        Path(world["train"]).read_text().splitlines()[:10] + Path(world["test"]).read_text().splitlines()[:10]
    )
    (tmp_path / "half.jsonl").write_text("\n".join(lines) + "\n")
    flags = _filled(flags, {"__HALF_TRAIN__": str(tmp_path / "half.jsonl")})
    code = main(smoke_args(world, tmp_path, "--dry-run", *flags))
    out = capsys.readouterr().out
    assert code == 0 and "Warning: " in out and warning in out, out


@pytest.mark.parametrize("split", ["train", "validation"])
def test_a_data_file_that_is_not_utf8_is_refused(split: str, world: dict, tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        Path(world[split]).read_bytes() + b'{"sentence": "caf\xe9 \xff", "label": 1, "idx": 9999}\n'
    )
    refused(capsys, smoke_args(world, tmp_path, "--dry-run", f"--{split}", str(path)), "is not UTF-8 text")


# --- the teacher folder, loaded as the teacher stage will load it ---------------------------------


def _teacher_folder(world: dict, tmp_path: Path, damage: str) -> str:
    """A copy of the tiny encoder, damaged one way."""
    import json

    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / f"teacher-{damage}"
    shutil.copytree(world["encoder"], folder)
    config = folder / "config.json"
    weights = folder / "model.safetensors"
    if damage == "no tokenizer files":
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink(missing_ok=True)
    elif damage in ("more layers than weights", "fewer layers than weights"):
        values = json.loads(config.read_text())
        values["num_hidden_layers"] = 6 if damage == "more layers than weights" else 3
        config.write_text(json.dumps(values))
    elif damage == "no weights":
        weights.unlink()
    elif damage == "cut-off weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "labels of another task":
        values = json.loads(config.read_text())
        classifier = BertForSequenceClassification(
            BertConfig(
                **{
                    **values,
                    "num_labels": 2,
                    "id2label": {0: "yes", 1: "no"},
                    "label2id": {"yes": 0, "no": 1},
                }
            )
        )
        shutil.rmtree(folder / "model.safetensors", ignore_errors=True)
        classifier.save_pretrained(folder)
    return str(folder)


TEACHER_FOLDERS = {
    "no tokenizer files": "lacks tokenizer files (tokenizer.json, vocab.txt, vocab.json, ...): the tokenizer "
    "built without them has 5 tokens for an embedding of 43 rows",
    "more layers than weights": "do not fit its config (6 layers): missing from the files: "
    "['bert.encoder.layer.4.",
    "fewer layers than weights": "do not fit its config (3 layers): in the files but not the model: "
    "['encoder.layer.3.",
    "no weights": "Cannot load the weights of",
    "cut-off weights": "Cannot load the weights of",
    "labels of another task": "names its labels ['yes', 'no'], but the task's labels are "
    "['negative', 'positive']",
}


@pytest.mark.parametrize("dry", [True, False], ids=["dry run", "run"])
@pytest.mark.parametrize("damage", list(TEACHER_FOLDERS), ids=list(TEACHER_FOLDERS))
def test_a_teacher_folder_the_teacher_stage_would_refuse_is_refused_before_ray(
    damage: str, dry: bool, world: dict, tmp_path: Path, capsys
) -> None:
    teacher = _teacher_folder(world, tmp_path, damage)
    flags = ["--teacher", teacher, "--strategies", "bottom", "top", *(["--dry-run"] if dry else [])]
    refused(capsys, smoke_args(world, tmp_path, *flags), TEACHER_FOLDERS[damage])
    assert not (tmp_path / "smoke").exists()


# --- the dry run refuses what the run refuses -----------------------------------------------------

RUN_REFUSES = {
    "storage under /proc": (["--storage-path", "/proc/kd-study"], "Cannot write the study folder"),
    "storage that is a file": (["--storage-path", "__FILE__"], "is a file, not a folder"),
    "a name of 300 characters": (["--name", "s" * 300], "takes folder names of at most 255"),
    "a name that holds a study": ([], "already holds a study. Pass --resume"),
    "a seed of 2**64": (["--seeds", "18446744073709551616,"], "must be < 4294967296"),
    "a sampler seed of 2**32": (["--config", "__SAMPLER__"], "sampler_seed must be < 4294967296"),
    "a search lr range up to 10": (["--config", "__LR__"], "search.space.lr reaches 10.0"),
    "max_length beyond the teacher's positions": (["--config", "__LENGTH__"], "takes inputs of at most 64"),
}


@pytest.mark.parametrize("dry", [True, False], ids=["dry run", "run"])
@pytest.mark.parametrize("case", list(RUN_REFUSES), ids=list(RUN_REFUSES))
def test_the_dry_run_refuses_what_the_run_refuses(
    case: str, dry: bool, world: dict, tmp_path: Path, capsys
) -> None:
    flags, message = RUN_REFUSES[case]
    (tmp_path / "file").write_text("")
    configs = {
        "__SAMPLER__": {"search": {"sampler_seed": 2**32}},
        "__LR__": {"search": {"space": {"lr": [1.0e-3, 10.0]}}},
        "__LENGTH__": {"data": {"max_length": 100}},
    }
    swap = {"__FILE__": str(tmp_path / "file")}
    for placeholder, values in configs.items():
        swap[placeholder] = str(tmp_path / f"{placeholder.strip('_').lower()}.yaml")
        Path(swap[placeholder]).write_text(yaml.safe_dump({"preset": "smoke", **values}))
    if case == "a name that holds a study":
        (tmp_path / "smoke").mkdir()
        (tmp_path / "smoke" / "study.yaml").write_text("preset: smoke\n")
    args = smoke_args(world, tmp_path, *_filled(flags, swap), *(["--dry-run"] if dry else []))
    refused(capsys, args, message)
    if case != "a name that holds a study":
        assert not (tmp_path / "smoke").exists()


# --- analysis.rank ----------------------------------------------------------------------------------


def _ranking_rows(tmp_path: Path) -> Path:
    rows = "strategy,seed,eval_accuracy\n" + "".join(
        f"{strategy},{seed},{0.5 + 0.1 * index + 0.01 * seed}\n"
        for index, strategy in enumerate(("odd", "even"))
        for seed in range(3)
    )
    (tmp_path / "x.csv").write_text(rows)
    (tmp_path / "x_history.csv").write_text("trial_id,epoch\nrow1,1\n")
    return tmp_path / "x.csv"


@pytest.mark.parametrize(
    "outputs",
    [
        ["--out", "x.csv"],
        ["--out", "r.csv", "--trials", "x.csv"],
        ["--out", "r.csv", "--trials", "x_history.csv"],
        ["--out", "x_history.csv"],
        ["--out", "r.csv", "--report", "x.csv"],
    ],
    ids=[
        "ranking over the input",
        "trials over the input",
        "trials over the input's history",
        "ranking over the input's history",
        "report over the input",
    ],
)
def test_analysis_rank_never_overwrites_its_input(outputs: list[str], tmp_path: Path, capsys) -> None:
    from analysis.rank import main as rank

    source = _ranking_rows(tmp_path)
    before = source.read_bytes(), source.with_name("x_history.csv").read_bytes()
    outputs = [str(tmp_path / item) if item.endswith(".csv") else item for item in outputs]
    assert rank([str(source), *outputs]) == 2
    assert "would overwrite what is ranked" in capsys.readouterr().err
    assert (source.read_bytes(), source.with_name("x_history.csv").read_bytes()) == before


def test_analysis_rank_refuses_rows_without_a_strategy(tmp_path: Path, capsys) -> None:
    from analysis.rank import main as rank

    (tmp_path / "blank.csv").write_text(
        "strategy,seed,eval_accuracy\nodd,0,0.5\n,1,0.6\nodd,1,0.7\n  ,0,0.4\n"
    )
    assert rank([str(tmp_path / "blank.csv"), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "has no strategy on line(s) 3, 5" in err and "Traceback" not in err

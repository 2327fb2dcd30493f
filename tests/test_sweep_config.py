"""The sweep's settings and checks, without Ray: presets, merging, every bad input, --dry-run."""

import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from transformers import AutoConfig

from analysis.ranked import COLUMNS
from sweep.config.flags import split_strategies
from sweep.config.stored import write_study_file
from sweep.config.study import load_yaml, resolve
from sweep.plan import warnings
from sweep.preflight.model import parameter_counts
from sweep.run import main
from sweep.stages import deliverables
from sweep.stages.deliverables import rank_stage
from sweep.ui.console import shown_messages
from tests.conftest import smoke_args
from trainables.strategies.registry import select_layers
from trainables.tiny import write_tiny_encoder

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "validation", "test", "selection")


def cli(capsys, args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_yaml(path: Path, values: dict) -> str:
    path.write_text(yaml.safe_dump(values))
    return str(path)


# --- presets and merging -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["original", "mnli", "smoke"])
def test_example_configs_are_the_presets(name: str) -> None:
    assert resolve(load_yaml(REPO / "configs" / f"{name}.yaml")) == resolve(flags={"preset": name})


def test_the_default_preset_is_the_original_study_done_right() -> None:
    config = resolve()
    assert config.preset == "original" and config.teacher.base == "bert-base-uncased"
    assert config.data.task == "mnli" and config.trial.student_layers == 6
    assert config.strategies == ["bottom", "top", "odd", "even"]
    assert (config.data.train_size, config.data.validation_size, config.data.test_size) == (
        1000,
        50,
        50,
    )
    assert (config.data.validation, config.data.test) == ("validation_mismatched", "validation_matched")
    assert (config.trial.batch_size, config.trial.lr, config.trial.epochs) == (32, 5e-5, 5)
    assert config.seeds == [0, 1, 2, 3, 4, 5, 6]  # the fewest seeds that decide a tie of 4 strategies


@pytest.mark.parametrize(
    ("grace", "epochs", "rung"), [(None, 5, 3), (None, 4, 2), (None, 1, 1), (1, 5, 1), (9, 5, 5)]
)
def test_asha_first_compares_trials_halfway_unless_told(grace, epochs, rung) -> None:
    config = resolve(flags={"search": {"grace_period": grace}, "trial": {"epochs": epochs}})
    assert config.search.first_rung(config.trial.epochs) == rung


def test_the_published_mnli_study_keeps_the_first_rung_it_ran_with() -> None:
    config = resolve(load_yaml(REPO / "configs" / "mnli-offline.yaml"))
    published = yaml.safe_load((REPO / "docs" / "mnli" / "study.yaml").read_text())
    assert config.search.grace_period == published["search"]["grace_period"] == 1


def test_flags_override_yaml_which_overrides_the_preset(tmp_path: Path) -> None:
    yaml_values = {"preset": "smoke", "trial": {"epochs": 7, "lr": 0.01}, "replicate": {"seeds": 4}}
    config = resolve(yaml_values, {"trial": {"epochs": 9}, "resources": {"cpus_per_trial": 2.0}})
    assert config.preset == "smoke"
    assert config.trial.epochs == 9  # flag beats YAML
    assert config.trial.lr == 0.01  # YAML beats preset
    assert config.trial.batch_size == 16  # preset
    assert config.replicate.seeds == 4 and config.resources.cpus_per_trial == 2.0
    assert config.name == "smoke" and Path(config.storage_path).is_absolute()


def test_strategy_flags_keep_custom_lists_whole() -> None:
    assert split_strategies(["bottom,top", "custom:1,5,9", "odd"]) == ["bottom", "top", "custom:1,5,9", "odd"]
    assert split_strategies(["custom:2,4,top"]) == ["custom:2,4", "top"]


# --- every bad input exits with status 2 before Ray starts ---------------------------------------


def _bad_rows(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


BAD_FLAGS = {
    "unknown preset": (["--preset", "nope"], "Unknown preset"),
    "unknown strategy": (["--strategies", "bottom", "sideways"], "Unknown layer strategy"),
    "custom layer out of range": (["--strategies", "custom:1,9"], "outside the teacher's 1..4"),
    "custom layer repeated": (["--strategies", "custom:2,2"], "repeats a layer"),
    "custom layers of the wrong count": (["--strategies", "custom:1,2,3"], "lists 3 layers"),
    "student as deep as teacher": (["--student-layers", "4"], "between 1 and 3 layers"),
    "student of no layers": (["--student-layers", "0"], "student_layers must be at least 1, got 0"),
    "seeds below 1": (["--seeds", "0"], "seeds must be at least 1"),
    "unknown task": (["--task", "imdb"], "Unknown task 'imdb'"),
    "missing data file": (["--train", "/no/such/train.jsonl"], "does not exist"),
    "unlabelled hub test split": (["--test", "test"], "without labels"),
    "GPU fraction above one": (["--gpus-per-trial", "1.5"], "a fraction of one GPU"),
    "GPUs per trial beyond the total": (["--gpus-per-trial", "0.25", "--gpus", "0"], "asks for 0.25 GPUs"),
    "GPUs beyond the machine": (["--gpus", "1000"], "GPU(s). To use GPUs on other machines"),
    "CPUs per trial beyond the total": (["--cpus", "2", "--cpus-per-trial", "3"], "lower --cpus-per-trial"),
    "not a number": (["--seeds", "many"], "invalid seeds 'many'"),
}


@pytest.mark.parametrize("case", list(BAD_FLAGS), ids=list(BAD_FLAGS))
def test_bad_flags_exit_with_status_2(case: str, world: dict, tmp_path: Path, capsys) -> None:
    flags, message = BAD_FLAGS[case]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *flags))
    assert code == 2 and message in err, err
    assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err


BAD_YAML = {
    "unknown key": ({"trial": {"temprature": 2.0}}, "Unknown trial setting(s) ['temprature']"),
    "unknown section": ({"sweep": {}}, "Unknown study setting(s) ['sweep']"),
    "search range min above max": (
        {"search": {"space": {"lr": {"min": 0.1, "max": 0.01}}}},
        "min 0.1 > max 0.01",
    ),
    "temperature not positive": (
        {"stages": ["replicate"], "trial": {"temperature": 0.0}},
        "temperature must be > 0",
    ),
    "temperature range reaching 0": (
        {"search": {"space": {"temperature": [0.0, 2.0]}}},
        "temperature must stay > 0",
    ),
    "negative loss weight": (
        {"stages": ["replicate"], "trial": {"alpha_ce": -0.5}},
        "must be >= 0 and not all zero",
    ),
    "all-zero loss weights": (
        {"stages": ["replicate"], "trial": {"alpha_ce": 0.0, "alpha_kd": 0.0, "alpha_cos": 0.0}},
        "not all zero",
    ),
    "all-zero weight ranges": (
        {"search": {"space": {"alpha_ce": 0.0, "alpha_kd": 0.0, "alpha_cos": 0.0}}},
        "every loss weight 0",
    ),
    "negative weight range": ({"search": {"space": {"alpha_kd": [-1.0, 1.0]}}}, "cannot be negative"),
    "lr not positive": ({"stages": ["replicate"], "trial": {"lr": 0.0}}, "lr must be > 0"),
    "bad fault": ({"faults": [{"strategy": "top", "fault": "boom:3"}]}, "fault must be"),
    "too few joint search samples": (
        {"search": {"mode": "joint", "num_samples": 2}},
        "num_samples must be at least 4",
    ),
}


@pytest.mark.parametrize("case", list(BAD_YAML), ids=list(BAD_YAML))
def test_bad_yaml_exits_with_status_2(case: str, world: dict, tmp_path: Path, capsys) -> None:
    values, message = BAD_YAML[case]
    config = write_yaml(tmp_path / "study.yaml", {"preset": "smoke", **values})
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", "--config", config))
    assert code == 2 and message in err, err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "good film", "label": 1}], "lacks the sst2 columns ['sentence']"),
        ([{"sentence": "good film", "label": 5}], "labels outside 0..1"),
    ],
    ids=["rows lacking the task's columns", "labels outside the task's range"],
)
def test_bad_rows_exit_with_status_2(rows, message, world: dict, tmp_path: Path, capsys) -> None:
    bad = _bad_rows(tmp_path, rows)
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", "--validation", bad))
    assert code == 2 and message in err, err


def test_unreachable_hub_fails_fast(world: dict, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", "--teacher", "some-org/some-bert"))
    assert code == 2 and "unreachable" in err, err


def test_resume_needs_a_study(world: dict, tmp_path: Path, capsys) -> None:
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--resume", str(tmp_path / "elsewhere")))
    assert code == 2 and "holds no study" in err


def test_an_existing_study_is_neither_overwritten_nor_resumed_differently(
    world: dict, tmp_path: Path, capsys
) -> None:
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "replicate": {"seeds": 2}})
    write_study_file(config)
    code, out, err = cli(capsys, smoke_args(world, tmp_path))
    assert code == 2 and "already holds a study" in err
    code, out, err = cli(
        capsys, ["--preset", "smoke", "--storage-path", str(tmp_path), "--resume", "--seeds", "3"]
    )
    assert code == 2 and "replicate.seeds: 2 in the study, 3 now" in err


# --- --dry-run -----------------------------------------------------------------------------------


def test_dry_run_json_lists_every_planned_trial(world: dict, tmp_path: Path, capsys) -> None:
    args = ["--strategies", "bottom", "top", "custom:1,4", "--num-samples", "3", "--seeds", "3"]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *args, "--format", "json"))
    assert code == 0, err
    planned = json.loads(out)
    search = [t for t in planned if t["stage"] == "search"]
    replicate = [t for t in planned if t["stage"] == "replicate"]
    assert len(search) == 3 * 3 and len(replicate) == 3 * 3  # one search of 3 trials per strategy
    assert [t["strategy"] for t in search] == [s for s in ("bottom", "top", "custom:1,4") for _ in range(3)]
    first, sampled = search[0], search[1]
    assert first["hyperparameters"].startswith("fixed") and first["lr"] == 3e-3
    assert sampled["hyperparameters"] == "sampled at random"  # TPE models from the third trial on
    assert sampled["lr"] == {"min": 1e-3, "max": 1e-2, "log": True}
    assert {(t["strategy"], t["seed"]) for t in replicate} == {
        (s, seed) for s in ("bottom", "top", "custom:1,4") for seed in (0, 1, 2)
    }
    for trial in planned:
        assert {"stage", "strategy", "teacher_layers", "seed", "temperature", "alpha_ce", "alpha_kd"} <= set(
            trial
        )
        assert {"alpha_cos", "lr"} <= set(trial)
        if trial["strategy"]:
            assert trial["teacher_layers"] == select_layers(trial["strategy"], 4, 2)
    assert not (tmp_path / "smoke").exists()  # nothing written


def test_dry_run_of_a_joint_search_samples_the_strategy(world: dict, tmp_path: Path, capsys) -> None:
    config = write_yaml(
        tmp_path / "joint.yaml", {"preset": "smoke", "search": {"mode": "joint", "num_samples": 5}}
    )
    args = ["--config", config, "--strategies", "bottom", "top", "--format", "json"]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *args))
    assert code == 0, err
    search = [t for t in json.loads(out) if t["stage"] == "search"]
    assert [t["strategy"] for t in search] == ["bottom", "top", None, None, None]
    assert search[2]["strategy_choices"] == ["bottom", "top"]


def test_seeds_flag_takes_a_list_to_add_seeds_to_a_finished_study(
    world: dict, tmp_path: Path, capsys
) -> None:
    args = ["--stage", "replicate", "--strategies", "bottom", "top", "--seeds", "5,6,7", "--format", "json"]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *args))
    assert code == 0, err
    assert [(t["strategy"], t["seed"]) for t in json.loads(out)] == [
        (s, seed) for s in ("bottom", "top") for seed in (5, 6, 7)
    ]
    one = [*args[:-4], "--seeds", "5,", "--format", "json"]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *one))
    assert code == 0, err
    assert [(t["strategy"], t["seed"]) for t in json.loads(out)] == [("bottom", 5), ("top", 5)]


def test_dry_run_of_replicate_only_uses_the_fixed_hyperparameters(
    world: dict, tmp_path: Path, capsys
) -> None:
    code, out, err = cli(
        capsys, smoke_args(world, tmp_path, "--dry-run", "--format", "json", "--stage", "replicate")
    )
    planned = json.loads(out)
    assert code == 0 and {t["stage"] for t in planned} == {"replicate"} and len(planned) == 4 * 2
    assert {(t["lr"], t["temperature"], t["hyperparameters"]) for t in planned} == {(3e-3, 2.0, "fixed")}


def test_dry_run_of_the_original_preset_warns_about_its_small_sets(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub splits are checked by name only
    teacher = write_tiny_encoder(tmp_path / "twelve-layers", layers=12)
    positions = write_yaml(tmp_path / "positions.yaml", {"data": {"max_length": 64}})  # the tiny encoder's
    base = ["--dry-run", "--teacher", teacher, "--storage-path", str(tmp_path), "--config", positions]
    code, out, err = cli(capsys, base)
    assert code == 0, err
    counts = parameter_counts(AutoConfig.from_pretrained(teacher), "mnli", 6)
    assert f"(12 layers, {counts[0]:,} parameters)" in out
    assert f"Student: 6 layers, {counts[1]:,} parameters" in out
    warning = (
        "Warning: validation and test: 50 examples each, a 95% interval of ±0.13 on accuracy; ±0.05 needs"
    )
    assert warning in out  # one line for the two sets of the same size
    assert "test examples come from validation_matched" in out and "unlabelled" in out
    assert "odd [1, 3, 5, 7, 9, 11]" in out and "even [2, 4, 6, 8, 10, 12]" in out
    assert len([line for line in out.splitlines() if line.startswith("replicate tuned ")]) == 4 * 7
    assert len([line for line in out.splitlines() if line.startswith("replicate fixed ")]) == 4 * 7
    assert "cannot show any" not in out  # the default is the fewest seeds that decide a tie
    assert "109,482,240" not in out  # the tiny 12-layer encoder is not BERT-base
    code, out, err = cli(capsys, [*base, "--seeds", "5"])
    assert "5 seeds cannot show any of 4 strategies worse than the best (Holm-corrected Wilcoxon)" in out
    assert "7 can (--seeds 7)" in out


def test_dry_run_warns_when_two_strategies_copy_the_same_layers(world: dict, tmp_path: Path, capsys) -> None:
    code, out, err = cli(
        capsys, smoke_args(world, tmp_path, "--dry-run", "--strategies", "top", "even", "uniform")
    )
    assert code == 0, err
    assert "even [2, 4]" in out and "uniform [2, 4]" in out
    warnings = [line for line in out.splitlines() if "all copy" in line]
    assert warnings == [
        "Warning: strategies even and uniform all copy teacher layers [2, 4]: they build the same "
        "student, so their trials repeat each other. Keep one of them."
    ]


OFFLINE_STUDIES = {
    # search: 7 strategies x 8 trials; replicate: 7 strategies x (tuned, fixed) x 8 seeds
    "mnli-offline": {"search": 7 * 8, "replicate": 7 * 2 * 8},
    "sst2-offline": {"replicate": 7 * 8},
}


@pytest.mark.real
@pytest.mark.parametrize("name", list(OFFLINE_STUDIES))
def test_offline_study_configs_dry_run_on_the_real_assets(
    name: str, shared_data: Path, minilm: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """The README's two MiniLM studies: their configs load, pass every check and plan their trials
    (whatever this machine's free disk: its check has tests of its own)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(warnings, "free_bytes", lambda config: 10**15)
    config = load_yaml(REPO / "configs" / f"{name}.yaml")
    sources = {split: config["data"][split] for split in SPLITS if config["data"].get(split)}
    flags = [
        f"--{split}={source.replace('../shared/data', str(shared_data))}" for split, source in sources.items()
    ]
    args = ["--config", f"configs/{name}.yaml", "--teacher", minilm, "--storage-path", str(tmp_path)]
    code, out, err = cli(capsys, [*args, *flags, "--dry-run", "--format", "json"])
    assert code == 0, err
    planned = json.loads(out)
    stages = {stage: sum(t["stage"] == stage for t in planned) for stage in ("search", "replicate")}
    assert {stage: count for stage, count in stages.items() if count} == OFFLINE_STUDIES[name]
    assert {t["strategy"]: t["teacher_layers"] for t in planned} == {
        "bottom": [1, 2, 3],
        "top": [4, 5, 6],
        "odd": [1, 3, 5],
        "even": [2, 4, 6],
        "scratch": [],
        "auto:bi": None,  # chosen from data by the teacher stage
        "auto:drop": None,
    }


def test_the_twelve_to_six_config_plans_the_original_question(
    shared_data: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """configs/mnli-12to6.yaml on a stand-in: a 12-layer MPNet, narrow so that it saves in a moment."""
    from transformers import BertTokenizer, MPNetConfig, MPNetModel

    from trainables.tiny import FILLER, SPECIAL_TOKENS

    monkeypatch.chdir(REPO)
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(SPECIAL_TOKENS + FILLER)})
    sizes = {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32}
    MPNetModel(MPNetConfig(vocab_size=len(tokenizer), num_hidden_layers=12, **sizes)).save_pretrained(
        tmp_path / "mpnet"
    )
    tokenizer.save_pretrained(tmp_path / "mpnet")
    args = [
        "--config",
        "configs/mnli-12to6.yaml",
        "--teacher",
        str(tmp_path / "mpnet"),
        "--storage-path",
        str(tmp_path),
    ]
    code, out, err = cli(capsys, [*args, "--dry-run", "--format", "json"])
    assert code == 0, err
    planned = json.loads(out)
    layers = {t["strategy"]: t["teacher_layers"] for t in planned}
    assert layers["bottom"] == [1, 2, 3, 4, 5, 6] and layers["top"] == [7, 8, 9, 10, 11, 12]
    assert layers["distilbert"] == [1, 3, 5, 8, 10, 12] and layers["auto:drop"] is None
    assert len(planned) == 8 * 9  # 8 strategies need 9 seeds to decide a tie
    assert {(t["lr"], t["epochs"], t["batch_size"], t["temperature"]) for t in planned} == {
        (5e-5, 5, 32, 2.0)
    }


# --- the ranking hook ----------------------------------------------------------------------------


def test_ranking_hook_ranks_a_trials_csv_and_prints_the_table(tmp_path: Path, capsys) -> None:
    rows = [
        {"strategy": strategy, "seed": seed, "eval_accuracy": base + 0.01 * seed}
        for strategy, base in (("top", 0.8), ("bottom", 0.6))
        for seed in range(3)
    ]
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "name": "ranked"})
    trials = config.layout.stage_trials("replicate")
    trials.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(trials, index=False)
    with shown_messages():
        top = rank_stage(config, "replicate")
    table = pd.read_csv(config.layout.ranking_csv)
    assert top == "top"
    assert table["strategy"].tolist() == ["top", "bottom"]
    assert table["mean"].tolist() == pytest.approx([0.81, 0.61])
    assert "top" in capsys.readouterr().out


def test_finished_trials_still_get_a_ranking_when_the_statistics_fail(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """A bug in the tests must not cost a study its ranking: the fallback ranks by mean, without
    tests, and says why. Equal means share a rank; a failed trial is left out of n."""
    rows = [
        {"strategy": strategy, "seed": seed, "eval_accuracy": value, "status": "TERMINATED"}
        for strategy, values in (("odd", [0.5, 0.7, 0.6]), ("top", [0.8, 0.4, 0.6]), ("bottom", [0.9, 0.8]))
        for seed, value in enumerate(values)
    ] + [{"strategy": "bottom", "seed": 2, "eval_accuracy": None, "status": "ERROR"}]
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "name": "fallback"})
    trials = config.layout.stage_trials("replicate")
    trials.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(trials, index=False)

    def broken(*args, **kwargs):
        raise RuntimeError("statistics bug")

    monkeypatch.setattr(deliverables, "rank_loaded", broken)
    with shown_messages():
        top = rank_stage(config, "replicate")
    table = pd.read_csv(config.layout.ranking_csv)
    assert top == "bottom"
    assert list(table.columns) == COLUMNS
    assert table["strategy"].tolist() == ["bottom", "odd", "top"]  # odd and top tie at 0.6: by name
    assert table["rank"].tolist() == [1, 2, 2]
    assert table["n"].tolist() == [2, 3, 3]
    assert table["mean"].tolist() == pytest.approx([0.85, 0.6, 0.6])
    assert table["std"].tolist() == pytest.approx([np.std([0.9, 0.8], ddof=1), 0.1, 0.2])
    assert table["tied_with_best"].isna().all() and table["p_vs_best"].isna().all()
    assert (table["test"] == "none: the statistics failed (RuntimeError: statistics bug)").all()
    assert len(pd.read_csv(config.layout.trials_csv)) == 9  # every trial, the failed one too
    assert "without tests" in capsys.readouterr().out


def test_the_fallback_ranking_says_so_when_nothing_can_be_ranked(tmp_path: Path, capsys, monkeypatch) -> None:
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "name": "none"})
    trials = config.layout.stage_trials("replicate")
    trials.parent.mkdir(parents=True)
    pd.DataFrame([{"strategy": "odd", "seed": 0, "eval_accuracy": None, "status": "ERROR"}]).to_csv(trials)
    monkeypatch.setattr(deliverables, "rank_loaded", lambda *a, **k: 1 / 0)
    with shown_messages():
        assert rank_stage(config, "replicate") is None
    assert not config.layout.ranking_csv.exists()
    assert "the per-trial results are in" in capsys.readouterr().out


def test_the_parameters_of_bert_base_and_its_six_layer_students_are_counted_from_its_config() -> None:
    """The original study's models (bert-base-uncased's sizes are BertConfig's defaults), counted on the
    meta device: nothing is allocated."""
    from transformers import BertConfig

    assert parameter_counts(BertConfig(), "mnli", 6) == (109_484_547, 66_957_315)


def test_a_new_study_whose_checkpoints_cannot_fit_is_refused_and_a_resumed_one_warned(
    world: dict, tmp_path: Path, capsys, monkeypatch
) -> None:
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", "--seeds", "3"))
    assert code == 0 and "GB of checkpoints" not in out, err
    params = int(re.search(r"Student: \d+ layers, ([\d,]+) parameters", out).group(1).replace(",", ""))
    trials = 4 * 2 + 4 * 3  # the smoke searches, then 3 seeds of its 4 strategies
    need = trials * params * warnings.CHECKPOINT_BYTES_PER_PARAMETER
    message = f"he {trials} trials keep about {need / 1e6:.1f} MB of checkpoints"

    monkeypatch.setattr(warnings.shutil, "disk_usage", lambda folder: SimpleNamespace(free=need // 2))
    for dry in (["--dry-run"], []):  # the dry run refuses what the run refuses, before Ray
        code, out, err = cli(capsys, smoke_args(world, tmp_path, *dry, "--seeds", "3"))
        assert code == 2 and f"error: T{message}" in err and f"{need / 2e6:.1f} MB are free" in err, err
        assert not (tmp_path / "smoke").exists()  # a refused study leaves no folder
    config = resolve(flags={"preset": "smoke", "storage_path": str(tmp_path), "replicate": {"seeds": 3}})
    config.teacher.base = world["encoder"]
    config.data = dataclasses.replace(config.data, **{s: world[s] for s in ("train", "validation", "test")})
    write_study_file(config)
    code, out, err = cli(capsys, ["--resume", str(tmp_path / "smoke"), "--dry-run"])
    assert code == 0 and f"Warning: t{message}" in out, err
    monkeypatch.setattr(warnings.shutil, "disk_usage", lambda folder: SimpleNamespace(free=need))
    code, out, err = cli(capsys, ["--resume", str(tmp_path / "smoke"), "--dry-run"])
    assert code == 0 and "GB of checkpoints" not in out, err


def test_a_checkpoint_takes_the_bytes_per_parameter_the_disk_check_assumes(
    tiny_teacher: str, tiny_task, tmp_path: Path
) -> None:
    from sweep.plan.warnings import CHECKPOINT_BYTES_PER_PARAMETER
    from trainables.config import TrialConfig
    from trainables.distill import run_trial
    from trainables.reporting import STATE_FILE, LocalReporter

    config = TrialConfig(teacher=tiny_teacher, data=tiny_task, student_layers=2, epochs=1, device="cpu")
    params = run_trial(config, LocalReporter(tmp_path))[-1]["student_params"]
    size = (tmp_path / STATE_FILE).stat().st_size
    fixed = 100_000  # the RNG states, names and step counts, whatever the student's size
    assert params * CHECKPOINT_BYTES_PER_PARAMETER <= size <= params * CHECKPOINT_BYTES_PER_PARAMETER + fixed


# --- the racing replicate stage ------------------------------------------------------------------


def test_dry_run_of_a_race_plans_its_rounds(world: dict, tmp_path: Path, capsys) -> None:
    args = ["--stage", "replicate", "--race", "--strategies", "bottom", "top", "--format", "json"]
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *args))
    assert code == 0, err
    planned = json.loads(out)
    assert [(t["strategy"], t["seed"]) for t in planned] == [
        (s, seed) for s in ("bottom", "top") for seed in range(10)
    ]
    assert {t["seed"] for t in planned if not t.get("if_still_racing")} == {0, 1, 2}
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *args[:-2]))
    assert "Race: seeds 0-2 for all 2 strategy/setting pairs at once" in out and "6 to 20 trials" in out
    assert "cannot show any" not in out  # the grid's seed advice does not apply to a race


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--budget-trials", "5"], "replicate.budget_trials limits a race; set replicate.mode: race"),
        (["--budget-hours", "1"], "replicate.budget_hours limits a race"),
        (["--race", "--budget-trials", "0"], "budget_trials must be at least 1"),
        (
            ["--race", "--strategies", "subsets:9"],
            "subsets:9 asks for 9 sets, but 4 layers have only 6 sets of 2",
        ),
    ],
)
def test_bad_race_settings_exit_with_status_2(flags, message, world: dict, tmp_path: Path, capsys) -> None:
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", *flags))
    assert code == 2 and message in err, err


def test_a_race_needs_its_first_decision_within_max_seeds(world: dict, tmp_path: Path, capsys) -> None:
    config = write_yaml(
        tmp_path / "race.yaml",
        {"preset": "smoke", "replicate": {"mode": "race", "min_seeds": 4, "max_seeds": 3}},
    )
    code, out, err = cli(capsys, smoke_args(world, tmp_path, "--dry-run", "--config", config))
    assert code == 2 and "replicate.max_seeds (3) is below replicate.min_seeds (4)" in err

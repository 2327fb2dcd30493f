"""Reading per-trial results: folders of CSVs, one teacher per ranking, error lines, bad seeds."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.curves import last_epoch_change, last_epoch_sentence
from analysis.rank import main, rank_study
from analysis.results import (
    InputError,
    error_line,
    history_path,
    load_results,
    merge_results,
    resolve_input,
)

from .test_analysis_rank import replicate_rows, write_csv


class FailedTrial:
    """What `error_line` reads of a Ray trial: its error text."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def get_error(self) -> str | None:
        return self.text


RAY_TRACEBACK = """Failure # 1 (occurred at 2025-01-01_00-00-00)
ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1, actor_id=abc, repr=distill_trial)
  File "trainables/loop.py", line 80, in train_epoch
    raise NonFiniteLossError(f"the training loss became {loss}: at step {step}")
trainables.errors.NonFiniteLossError: the training loss became nan at step 3
  lower the learning rate or the temperature
"""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (RAY_TRACEBACK, "trainables.errors.NonFiniteLossError: the training loss became nan at step 3"),
        ("NonFiniteLossError: the training loss became nan at step 3", None),
        ("worker died\n\n  killed by the OOM killer  \n", "killed by the OOM killer"),
        ("", "failed"),
        (None, "failed"),
        ("ValueError: " + "x" * 400, "ValueError: " + "x" * 288),
    ],
)
def test_error_line_prefers_the_line_that_names_the_error(text, line):
    assert error_line(FailedTrial(text)) == (line or text)
    assert len(error_line(FailedTrial(text))) <= 300


def hashed(rows: list[dict], teacher: str | None) -> list[dict]:
    return [{**row, "teacher_hash": teacher} if teacher else row for row in rows]


def test_trials_of_different_teachers_are_not_merged(tmp_path, capsys):
    rows = replicate_rows(4)
    first = write_csv(tmp_path / "first.csv", hashed(rows[:8], "0a1b"))
    other = write_csv(tmp_path / "other.csv", hashed(rows[8:], "ff00"))
    assert main([str(first), str(other), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{first} has 0a1b" in err and f"{other} has ff00" in err and "different teachers" in err

    mixed = write_csv(tmp_path / "mixed.csv", hashed(rows[:8], "0a1b") + hashed(rows[8:], "ff00"))
    with pytest.raises(InputError, match=r"0a1b \(8 trials\), ff00 \(8 trials\)"):
        merge_results([load_results(mixed)])


def test_parts_whose_strategy_copied_other_layers_are_not_merged(tmp_path, capsys):
    rows = hashed(replicate_rows(4), "0a1b")
    early, late = [r for r in rows if r["seed"] < 2], [r for r in rows if r["seed"] >= 2]
    first = write_csv(tmp_path / "first.csv", early)
    moved = [{**row, "teacher_layers": "1,3,5"} if row["strategy"] == "bottom" else row for row in late]
    other = write_csv(tmp_path / "other.csv", moved)
    assert main([str(first), str(other), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"bottom copied different teacher layers ([1,2,3] in {first}; [1,3,5] in {other})" in err
    assert (
        len(merge_results([load_results(first), load_results(write_csv(tmp_path / "same.csv", late))]).trials)
        == 16
    )


def epoch_reports(rows: list[dict], epochs: int = 3) -> pd.DataFrame:
    """Per-epoch reports of each trial, rising to its final value."""
    return pd.DataFrame(
        [
            {
                "trial_id": row["trial_id"],
                "training_iteration": e,
                "epoch": e,
                "eval_accuracy": row["eval_accuracy"] - 0.01 * (epochs - e),
            }
            for row in rows
            for e in range(1, epochs + 1)
        ]
    )


def test_learning_curves_travel_with_the_per_trial_csv(tmp_path):
    rows = [{**row, "trial_id": f"t{i}"} for i, row in enumerate(replicate_rows(3))]
    source = write_csv(tmp_path / "trials.csv", rows)
    epoch_reports(rows).to_csv(history_path(source), index=False)
    loaded = load_results(source)
    assert history_path(source).name == "trials_history.csv" and len(loaded.history) == 3 * len(rows)
    out = tmp_path / "out"
    out.mkdir()
    names = {"--out": "r.csv", "--plot": "r.png", "--trials": "t.csv", "--report": "r.md"}
    assert main([str(source), *(x for flag, name in names.items() for x in (flag, str(out / name)))]) == 0
    assert (out / "r_epochs.png").is_file()  # drawn from the CSVs alone
    assert "bottom +0.010 (rose in 3 of 3)" in (out / "r.md").read_text()
    again = load_results(out / "t.csv")
    assert again.history.sort_values(["trial_id", "epoch"], ignore_index=True).equals(
        loaded.history.sort_values(["trial_id", "epoch"], ignore_index=True)
    )

    epoch_reports(rows[:2] + [{"trial_id": "elsewhere", "eval_accuracy": 0.5}]).to_csv(
        history_path(source), index=False
    )
    with pytest.raises(InputError, match="reports trials that .* does not hold \\(elsewhere\\)"):
        load_results(source)


def test_a_teacher_without_hash_merges_with_a_note(tmp_path):
    rows = replicate_rows(4)
    old = write_csv(tmp_path / "old.csv", rows[:8])
    new = write_csv(tmp_path / "new.csv", hashed(rows[8:], "00e5"))
    merged = merge_results([load_results(old), load_results(new)])
    assert len(merged.trials) == 16
    assert merged.notes == (
        f"The teacher of {old} cannot be checked: its trials report no teacher_hash, while those of "
        f"{new} name the teacher 00e5.",
    )
    assert load_results(new).trials["teacher_hash"].tolist() == ["00e5"] * 8  # text, not 0.0
    older = write_csv(tmp_path / "older.csv", rows[8:])
    assert merge_results([load_results(old), load_results(older)]).notes == ()

    argv = [str(old), str(new), "--out", str(tmp_path / "r.csv"), "--report", str(tmp_path / "r.md")]
    assert main(argv) == 0
    assert f"The teacher of {old} cannot be checked" in (tmp_path / "r.md").read_text()


def study_kept_remotely(root: Path) -> Path:
    """A study folder as kept locally when its Ray results live on remote storage: only CSVs."""
    rows = hashed(replicate_rows(3), "beef")
    for strategy in ("bottom", "top", "odd", "scratch"):
        (root / "search" / strategy).mkdir(parents=True)
        write_csv(root / "search" / strategy / "trials.csv", [r for r in rows if r["strategy"] == strategy])
    (root / "replicate").mkdir()
    write_csv(root / "replicate" / "trials.csv", rows)
    return root


def test_a_study_of_csvs_loads_each_stage(tmp_path):
    study = study_kept_remotely(tmp_path / "study")
    search, stage = resolve_input(study, "search")
    assert (search, stage) == (study / "search", "search")
    merged = load_results(search)
    assert len(merged.trials) == 12 and merged.source.count(" + ") == 3
    assert sorted(merged.trials["strategy"].unique()) == ["bottom", "odd", "scratch", "top"]
    assert len(load_results(resolve_input(study, None)[0]).trials) == 12

    table = rank_study(study, tmp_path / "out", stage="search")
    assert set(table["aggregation"]) == {"best_config", "mean_over_configs"}
    assert table.set_index(["aggregation", "strategy"]).loc[("best_config", "bottom"), "n"] == 3


def test_non_numeric_seed_is_an_input_error_naming_the_lines(tmp_path, capsys):
    rows = replicate_rows(3)
    rows[4]["seed"], rows[7]["seed"] = "abc", None
    source = write_csv(tmp_path / "t.csv", rows)
    assert main([str(source), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "line 6 ('abc')" in err and "line 9 (nan)" in err and "numeric seed" in err
    assert load_results(write_csv(tmp_path / "ok.csv", replicate_rows(2))).trials["seed"].dtype == np.int64


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_non_finite_values_are_excluded_like_missing_ones(tmp_path, value):
    rows = replicate_rows(3)
    rows[9]["eval_accuracy"] = value  # scratch seed 0: inf would otherwise rank first
    table = rank_study(write_csv(tmp_path / "t.csv", rows), tmp_path / "out").set_index("strategy")
    assert table.loc["scratch", "n"] == 2 and table.loc["scratch", "rank"] == 4
    assert table.loc["scratch", "excluded"] == "seed 0: reported a non-finite eval_accuracy"
    assert table.loc["scratch", "mean"] == pytest.approx(
        np.mean([rows[10]["eval_accuracy"], rows[11]["eval_accuracy"]])
    )


def test_the_analysis_loads_no_torch():
    """The metric names come from trainables.metrics, which must stay free of torch and datasets."""
    code = "import sys, analysis.rank; sys.exit(bool({'torch', 'datasets'} & set(sys.modules)))"
    assert (
        subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1]).returncode == 0
    )


def test_the_last_epochs_change_per_strategy_has_a_known_answer():
    history = pd.DataFrame(
        {
            "trial_id": ["a", "a", "a", "b", "b", "c", "d", "d"],
            "epoch": [1, 2, 3, 1, 2, 1, 2, 1],  # d reported out of order
            "eval_loss": [0.9, 0.7, 0.6, 0.8, 0.85, 0.5, 0.4, 0.6],
        }
    )
    trials = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "strategy": ["odd", "odd", "odd", "top"]})
    table = last_epoch_change(history, trials, "eval_loss", "min")
    assert table.loc["odd"].to_dict() == {
        "mean_change": pytest.approx((-0.1 + 0.05) / 2),
        "improved": 1,
        "trials": 2,
    }
    assert table.loc["top"].to_dict() == {"mean_change": pytest.approx(-0.2), "improved": 1, "trials": 1}
    sentence = last_epoch_sentence(history, trials, "eval_loss", "min", ["top", "odd"])
    assert sentence.endswith("top -0.200 (fell in 1 of 1), odd -0.025 (fell in 1 of 2)")
    assert last_epoch_sentence(pd.DataFrame(), trials, "eval_loss", "min", ["odd"]) == ""


def test_the_last_epochs_change_needs_both_epochs_scored():
    """With eval_every 2 over 5 epochs, a trial is scored after epochs 2, 4 and 5: its last change is
    4 -> 5. Over 4 epochs (scored after 2 and 4) there is no last-epoch change to report."""
    history = pd.DataFrame(
        {
            "trial_id": ["a"] * 5 + ["b"] * 4,
            "epoch": [1, 2, 3, 4, 5, 1, 2, 3, 4],
            "eval_loss": [None, 0.8, None, 0.6, 0.55, None, 0.9, None, 0.7],
        }
    )
    trials = pd.DataFrame({"trial_id": ["a", "b"], "strategy": ["odd", "top"]})
    table = last_epoch_change(history, trials, "eval_loss", "min")
    assert list(table.index) == ["odd"]
    assert table.loc["odd", "mean_change"] == pytest.approx(-0.05)
    assert last_epoch_sentence(history, trials, "eval_loss", "min", ["top"]) == ""

"""The ranking pipeline and CLI on per-trial CSVs: outputs, exclusions, stages, bad input."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.aggregate import config_labels
from analysis.rank import main, rank_study
from analysis.ranked import COLUMNS
from analysis.results import InputError, Results, only_strategies, resolve_input

REQUIRED = [
    "rank",
    "strategy",
    "teacher_layers",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "mean_rank",
    "p_vs_best",
    "tied_with_best",
    "retention",
    "teacher_score",
    "init_score",
]
LAYERS = {"bottom": "1,2,3", "top": "4,5,6", "odd": "1,3,5", "scratch": ""}
MEANS = {"bottom": 0.85, "top": 0.847, "odd": 0.849, "scratch": 0.6}
JITTER = np.array([0.004, -0.003, 0.001, -0.002, 0.005, -0.004, 0.002, 0.0, -0.001, 0.003])


def trial(strategy: str, seed: int, value: float, **extra: object) -> dict[str, object]:
    """One row of a per-trial CSV, as `--trials` writes it."""
    return {
        "trial_id": f"{strategy}_{seed}_{extra.get('config/lr', '')}",
        "strategy": strategy,
        "seed": seed,
        "status": "TERMINATED",
        "teacher_layers": LAYERS[strategy],
        "eval_accuracy": value,
        "init_accuracy": 0.5 if strategy != "scratch" else 0.33,
        "teacher_accuracy": 0.9,
        "student_params": 22_000_000,
        **extra,
    }


# Per-seed noise: top's and odd's are reordered, so that they are not uniformly worse than
# bottom's (not significant), while scratch is worse on every seed (significant).
NOISE = {"bottom": JITTER, "top": JITTER[::-1], "odd": np.roll(JITTER, 3), "scratch": JITTER}


def replicate_rows(seeds: int = 10) -> list[dict[str, object]]:
    return [trial(s, seed, MEANS[s] + NOISE[s][seed]) for s in MEANS for seed in range(seeds)]


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_csv_end_to_end_writes_table_plots_and_report(tmp_path, capsys):
    source = write_csv(tmp_path / "trials.csv", replicate_rows())
    out, plot, report = tmp_path / "ranking.csv", tmp_path / "ranking.png", tmp_path / "report.md"
    argv = [str(source), "--out", str(out), "--plot", str(plot), "--report", str(report)]

    assert main(argv) == 0

    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == COLUMNS and set(REQUIRED) <= set(table.columns)
    assert table["strategy"].tolist() == ["bottom", "odd", "top", "scratch"]
    assert table["rank"].tolist() == [1, 2, 3, 4]
    assert table["tied_with_best"].tolist() == [True, True, True, False]
    assert table["test"].fillna("").tolist() == ["", "wilcoxon", "wilcoxon", "wilcoxon"]
    bottom = table.iloc[0]
    assert bottom["teacher_layers"] == "1,2,3" and pd.isna(table.iloc[3]["teacher_layers"])
    assert bottom["retention"] == pytest.approx((0.85 + JITTER.mean()) / 0.9)
    assert (
        bottom["init_score"] == 0.5
        and bottom["teacher_score"] == 0.9
        and bottom["student_params"] == 22_000_000
    )
    assert (table["aggregation"] == "mean_over_seeds").all()
    raw = stats.wilcoxon(0.85 + JITTER, 0.6 + JITTER).pvalue
    assert table.iloc[3]["p_uncorrected"] == pytest.approx(raw)

    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "ranking_epochs.png").exists()  # a CSV holds no per-epoch history
    text = report.read_text()
    assert "bottom is best; odd and top are not significantly worse (p > 0.05)" in text
    assert "scratch is significantly worse" in text
    assert "| 1 | bottom | 1,2,3 | 10 |" in text and "![ranking](ranking.png)" in text
    assert "- Teacher accuracy on the validation set: 0.9\n" in text
    assert "Friedman test across 4 strategies over 10 seeds" in text
    assert (
        "Across all strategies, the Friedman test gives p = " in text and ": the strategies differ." in text
    )
    assert "undetermined" not in text
    assert "bottom" in capsys.readouterr().out


def test_several_inputs_are_ranked_as_one_study(tmp_path):
    """A study with seeds 0-4 plus one that added seeds 5-9 ranks like all ten seeds at once."""
    rows = replicate_rows()
    first = write_csv(tmp_path / "first.csv", [row for row in rows if row["seed"] < 5])
    added = write_csv(tmp_path / "added.csv", [row for row in rows if row["seed"] >= 5])
    whole = write_csv(tmp_path / "whole.csv", rows)
    assert main([str(first), str(added), "--out", str(tmp_path / "merged.csv")]) == 0
    assert main([str(whole), "--out", str(tmp_path / "whole_ranking.csv")]) == 0

    merged, expected = pd.read_csv(tmp_path / "merged.csv"), pd.read_csv(tmp_path / "whole_ranking.csv")
    pd.testing.assert_frame_equal(merged, expected)
    assert merged["n"].tolist() == [10, 10, 10, 10]
    assert main([str(first), str(first), "--out", str(tmp_path / "twice.csv")]) == 2


def test_strategies_that_added_seeds_rank_on_all_of_them(tmp_path, capsys):
    """Seeds 0-4 of every strategy plus seeds 5-9 of bottom and odd: `--strategies bottom odd`
    ranks those two, paired over all ten seeds, exactly as a study of only them would."""
    rows = replicate_rows()
    first = write_csv(tmp_path / "first.csv", [row for row in rows if row["seed"] < 5])
    pair = [row for row in rows if row["strategy"] in ("bottom", "odd")]
    added = write_csv(tmp_path / "added.csv", [row for row in pair if row["seed"] >= 5])
    both = write_csv(tmp_path / "both.csv", pair)
    argv = ["--strategies", "bottom", "odd", "--out", str(tmp_path / "chosen.csv")]
    assert main([str(first), str(added), *argv]) == 0
    assert main([str(both), "--out", str(tmp_path / "expected.csv")]) == 0

    chosen, expected = pd.read_csv(tmp_path / "chosen.csv"), pd.read_csv(tmp_path / "expected.csv")
    pd.testing.assert_frame_equal(chosen, expected)
    assert chosen["n"].tolist() == [10, 10] and (chosen["test"].dropna() == "wilcoxon").all()
    gaps = pd.DataFrame(pair).pivot(index="seed", columns="strategy", values="eval_accuracy")
    expected_p = stats.wilcoxon(gaps["bottom"], gaps["odd"]).pvalue
    assert chosen.set_index("strategy").loc["odd", "p_vs_best"] == pytest.approx(expected_p)

    capsys.readouterr()
    assert main([str(first), *argv[:2], "tpo", *argv[3:]]) == 2
    assert (
        "No trial has the strategy tpo; the trials have bottom, odd, scratch, top." in capsys.readouterr().err
    )


def test_only_strategies_keeps_their_trials_and_history():
    trials = pd.DataFrame(replicate_rows(2))
    history = pd.DataFrame({"trial_id": trials["trial_id"], "epoch": 1, "eval_accuracy": 0.5})
    kept = only_strategies(Results(trials, history, "t.csv", ("a note",)), ["odd", "scratch"])

    assert sorted(kept.trials["strategy"].unique()) == ["odd", "scratch"] and len(kept.trials) == 4
    assert set(kept.history["trial_id"]) == set(kept.trials["trial_id"])
    assert kept.notes == ("a note",)


def test_retention_is_given_only_where_the_teacher_was_scored(tmp_path):
    """The teacher is scored on the validation set: a student's test accuracy has no teacher to
    be divided by."""
    rows = [{**row, "test_accuracy": row["eval_accuracy"] - 0.1} for row in replicate_rows()]
    source = write_csv(tmp_path / "t.csv", rows)
    assert main([str(source), "--metric", "test_accuracy", "--out", str(tmp_path / "r.csv")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert table["retention"].isna().all() and (table["teacher_score"] == 0.9).all()


def test_sampled_configurations_get_short_distinct_labels():
    trials = pd.DataFrame(
        {"config/lr": [2.9730254214469826e-05, 3.1540524969567945e-05], "config/seed": [0, 0]}
    )
    assert config_labels(trials).tolist() == ["lr=2.97303e-05", "lr=3.15405e-05"]


def test_failed_trial_is_excluded_counted_and_explained(tmp_path):
    rows = replicate_rows()
    rows[12] |= {"status": "ERROR", "error": "RuntimeError: CUDA out of memory"}  # top seed 2
    rows[13] |= {"status": "RUNNING", "eval_accuracy": np.nan}  # top seed 3
    table = rank_study(write_csv(tmp_path / "t.csv", rows), tmp_path / "out")

    top = table.set_index("strategy").loc["top"]
    assert top["n"] == 8 and top["n_excluded"] == 2
    assert "seed 2: failed: RuntimeError: CUDA out of memory" in top["excluded"]
    assert "seed 3: still running" in top["excluded"]
    assert top["test"] == "wilcoxon"  # paired over the 6 seeds it shares with the best
    report = (tmp_path / "out" / "report.md").read_text()
    assert "2 of 40 trials excluded" in report and "pairs the seeds both have" in report
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "ranking.csv",
        "ranking.png",
        "report.md",
        "trials.csv",
    }


def test_metric_missing_in_some_trials_excludes_them(tmp_path):
    rows = [row | {"test_accuracy": row["eval_accuracy"]} for row in replicate_rows(3)]
    rows[0]["test_accuracy"] = np.nan
    table = rank_study(write_csv(tmp_path / "t.csv", rows), tmp_path / "out", "test_accuracy")
    bottom = table.set_index("strategy").loc["bottom"]
    assert bottom["n"] == 2 and bottom["excluded"] == "seed 0: reported no test_accuracy"


def test_search_stage_ranks_best_configuration_and_mean_over_configurations(tmp_path):
    rows = []
    for strategy, offsets in {"bottom": (0.0, -0.1), "top": (-0.05, 0.02), "odd": (-0.2, -0.3)}.items():
        for lr, offset in zip((1e-4, 1e-3), offsets, strict=True):
            for seed in range(3):
                value = 0.8 + offset + 0.001 * seed
                rows.append(trial(strategy, seed, value, **{"config/lr": lr, "config/seed": seed}))
    source = write_csv(tmp_path / "search.csv", rows)
    out, report = tmp_path / "ranking.csv", tmp_path / "report.md"
    argv = ["--stage", "search", "--out", str(out), "--plot", str(tmp_path / "r.png")]
    assert main([str(source), *argv, "--report", str(report)]) == 0

    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    best = table[table["aggregation"] == "best_config"].set_index("strategy")
    assert best.index.tolist() == ["top", "bottom", "odd"]
    assert best.loc["top", "config"] == "lr=0.001" and best.loc["bottom", "config"] == "lr=0.0001"
    assert best.loc["top", "mean"] == pytest.approx(0.821) and best.loc["top", "n"] == 3
    mean = table[table["aggregation"] == "mean_over_configs"].set_index("strategy")
    assert mean.index.tolist() == ["top", "bottom", "odd"]
    assert mean.loc["bottom", "mean"] == pytest.approx(0.751) and mean.loc["bottom", "n"] == 6
    assert mean["test"].fillna("").tolist() == ["", "wilcoxon", "wilcoxon"]
    assert (tmp_path / "r_best_config.png").exists()
    assert (tmp_path / "r_mean_over_configs.png").exists()
    text = report.read_text()
    assert "## search stage, best config" in text and "| 1 | top | lr=0.001 |" in text
    assert "with these sample sizes no strategy can test as significantly worse" in text
    assert "whether the others tie with top is undetermined" in text
    assert best["tied_with_best"].iloc[0] == True and best["tied_with_best"].iloc[1:].isna().all()  # noqa: E712


def test_a_tie_between_configurations_goes_to_the_one_tried_first(tmp_path):
    """As a study picks its tuned setting: the earliest trial (the fixed setting) wins a tie, not the
    first configuration label in sorted order."""
    values = {
        "bottom": [(3e-5, 0.35), (1e-4, 0.35), (1e-5, 0.35), (2e-4, 0.33)],
        "top": [(1e-5, 0.4), (1e-4, 0.41)],
    }
    rows = [trial(s, 0, value, **{"config/lr": lr}) for s, tried in values.items() for lr, value in tried]
    out = tmp_path / "ranking.csv"
    assert main([str(write_csv(tmp_path / "search.csv", rows)), "--stage", "search", "--out", str(out)]) == 0
    best = pd.read_csv(out).query("aggregation == 'best_config'").set_index("strategy")["config"]
    assert best.to_dict() == {"top": "lr=0.0001", "bottom": "lr=3e-05"}


def test_single_seed_gives_nan_statistics_and_says_so(tmp_path, capsys):
    source = write_csv(tmp_path / "t.csv", replicate_rows(1))
    report = tmp_path / "report.md"
    assert main([str(source), "--out", str(tmp_path / "r.csv"), "--report", str(report)]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert table["rank"].tolist() == [1, 2, 3, 4]
    for column in ("std", "ci_low", "ci_high", "p_vs_best", "tied_with_best"):
        assert table[column].isna().all()
    assert "single seed" in capsys.readouterr().out
    assert "whether it is significantly better is undefined" in report.read_text()


def test_unknown_metric_exits_2_and_lists_available_metrics(tmp_path, capsys):
    source = write_csv(tmp_path / "t.csv", replicate_rows(2))
    assert main([str(source), "--metric", "eval_f1", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "'eval_f1'" in err and "Traceback" not in err
    assert "Available metrics: eval_accuracy, init_accuracy, student_params, teacher_accuracy" in err
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_empty_or_non_experiment_folder_exits_2(tmp_path, capsys, content):
    folder = tmp_path / "study"
    folder.mkdir()
    if content:
        (folder / content).write_text("not an experiment")
    assert main([str(folder), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "is not a Ray Tune experiment folder" in err and "Traceback" not in err


def csv_text(rows: list[dict[str, object]]) -> str:
    return pd.DataFrame(rows).to_csv(index=False)


@pytest.mark.parametrize(
    ("text", "argv", "message"),
    [
        ("", [], "is not a readable per-trial CSV"),
        ("strategy,seed,eval_accuracy\n", [], "holds no trials"),
        (csv_text([{"strategy": "a", "eval_accuracy": 0.5}]), [], "lacks the column(s) seed"),
        (csv_text([{"strategy": "a", "seed": 0}]), [], "Available metrics: none"),
        (
            csv_text([{"strategy": "a", "seed": 0, "eval_accuracy": 0.5, "status": "ERROR"}]),
            [],
            "No trial can be ranked",
        ),
        (csv_text(replicate_rows(2)), ["--reduce", "max"], "needs each trial's per-epoch history"),
    ],
)
def test_unrankable_csv_exits_2_with_a_message(tmp_path, capsys, text, argv, message):
    source = tmp_path / "t.csv"
    source.write_text(text)
    assert main([str(source), "--out", str(tmp_path / "r.csv"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_input_resolution_picks_the_stage_folder(tmp_path):
    study = tmp_path / "study"
    (study / "replicate").mkdir(parents=True)
    (study / "search").mkdir()
    assert resolve_input(study, None) == (study / "replicate", "replicate")
    assert resolve_input(study, "search") == (study / "search", "search")
    assert resolve_input(study / "search", None) == (study / "search", "search")
    (study / "replicate").rmdir()
    with pytest.raises(InputError, match="pass --stage search"):
        resolve_input(study, None)
    with pytest.raises(InputError, match="does not exist"):
        resolve_input(tmp_path / "nowhere", None)


# MRPC as a new user met it: the teacher at 0.832 F1, the majority-class floor at 0.812; bottom and
# scratch predict "equivalent" for every pair on every seed, odd learns a little, even collapses once.
FLOOR, TEACHER_F1 = 0.812, 0.832
ODD_F1 = FLOOR + np.array([0.006, -0.002, 0.004, 0.005, -0.001, 0.003, 0.004, 0.002])
EVEN_F1 = FLOOR + np.array([0.0, 0.002, -0.004, 0.001, 0.003, -0.002, 0.001, 0.002])


def floor_rows() -> list[dict[str, object]]:
    """Per-trial rows as the trials report them: eval_f1, its collapse flag and its baseline."""
    values = {"odd": ODD_F1, "even": EVEN_F1, "bottom": np.full(8, FLOOR), "scratch": np.full(8, FLOOR)}
    rows = []
    for strategy, scores in values.items():
        for seed, value in enumerate(scores):
            collapsed = strategy in ("bottom", "scratch") or (strategy == "even" and seed == 0)
            rows.append(
                {
                    "strategy": strategy,
                    "seed": seed,
                    "eval_f1": value,
                    "eval_collapsed": collapsed,
                    "teacher_f1": TEACHER_F1,
                    "baseline_eval_f1": FLOOR,
                    "config/data/task/name": "paraphrase",
                }
            )
    return rows


def test_students_at_the_floor_are_flagged_and_keep_none_of_the_teachers_gain(tmp_path, capsys):
    source = write_csv(tmp_path / "trials.csv", floor_rows())
    out, report = tmp_path / "ranking.csv", tmp_path / "report.md"
    assert main([str(source), "--metric", "eval_f1", "--out", str(out), "--report", str(report)]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""]).set_index("strategy")

    assert table.index.tolist() == ["odd", "even", "bottom", "scratch"]
    assert table["baseline_score"].to_numpy() == pytest.approx([FLOOR] * 4)
    assert table.loc["odd", "retention_above_baseline"] == pytest.approx((ODD_F1.mean() - FLOOR) / 0.02)
    assert table.loc["even", "retention_above_baseline"] == pytest.approx((EVEN_F1.mean() - FLOOR) / 0.02)
    assert table.loc[["bottom", "scratch"], "retention_above_baseline"].abs().max() < 1e-9
    assert table.loc["bottom", "retention"] == pytest.approx(FLOOR / TEACHER_F1)  # 0.976: looks fine
    assert table["n_collapsed"].to_dict() == {"odd": 0, "even": 1, "bottom": 8, "scratch": 8}
    assert table["collapsed"].fillna("").to_dict() == {
        "odd": "",
        "even": "0",
        "bottom": "0; 1; 2; 3; 4; 5; 6; 7",
        "scratch": "0; 1; 2; 3; 4; 5; 6; 7",
    }
    # Against odd, bottom and scratch are not significantly worse: odd is below the floor on 2 of 8 seeds.
    assert table.loc[["bottom", "scratch"], "tied_with_best"].tolist() == [True, True]

    text = report.read_text()
    lead = text.split("## replicate stage, mean over seeds\n\n", 1)[1].splitlines()[0]
    kept = (ODD_F1.mean() - FLOOR) / 0.02
    assert lead == (
        f"Above the baseline (a constant predictor: 0.812; the teacher: 0.832), odd keeps {kept:.0%} of the "
        f"teacher's gain, even {(EVEN_F1.mean() - FLOOR) / 0.02:.0%}, bottom 0% and scratch 0% (retention "
        "above baseline)."
    )
    assert (
        "bottom and scratch learnt nothing: every one of their students predicted one class (or a "
        "near-constant score) for every row of the ranked split (bottom 8 of 8, scratch 8 of 8 collapsed)"
    ) in text
    assert (
        "that bottom and scratch are tied with the best means only that the best is not significantly" in text
    )
    assert "Collapsed to one prediction on the ranked split: even 1 of 8 (seed: 0)." in text
    assert "- Task: paraphrase\n" in text and "- Baseline `eval_f1`: 0.812, the score of a constant" in text
    assert "| retention above baseline | retention |" in text

    printed = capsys.readouterr().out
    assert printed.startswith("Task: paraphrase\n")
    assert "(eval_f1, baseline 0.8120): rank, strategy, layers, mean ± CI95, tied, collapsed" in printed
    assert re.search(r"scratch +- +0\.8120 ± 0\.0000 +yes +8/8 \(learnt nothing\)", printed)


def test_results_without_baselines_or_collapse_flags_leave_those_columns_empty(tmp_path):
    """Published studies predate both: their rankings reproduce, with the new columns empty."""
    source = write_csv(tmp_path / "t.csv", replicate_rows())
    assert main([str(source), "--out", str(tmp_path / "r.csv"), "--report", str(tmp_path / "r.md")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    for column in ("n_collapsed", "retention_above_baseline", "baseline_score", "collapsed"):
        assert table[column].isna().all(), column
    text = (tmp_path / "r.md").read_text().split("\n", 3)[3]  # after the title and the source line
    assert "baseline" not in text and "collapsed" not in text and "learnt nothing" not in text


def test_a_baseline_or_collapse_flag_is_never_offered_as_a_metric(tmp_path, capsys):
    source = write_csv(tmp_path / "trials.csv", floor_rows())
    assert main([str(source), "--metric", "eval_accuracy", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "Available metrics: eval_f1, teacher_f1." in err

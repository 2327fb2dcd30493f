"""Settings, budgets and metrics a study ranks by, and outputs that are written whatever happens."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis.outputs
from analysis.rank import main, rank_into
from analysis.ranked import top_strategy
from analysis.report import console_table

from .test_analysis_rank import MEANS, replicate_rows, trial, write_csv

SEARCHED = {
    "config/temperature": 2.0,
    "config/alpha_ce": 0.5,
    "config/alpha_kd": 0.5,
    "config/alpha_cos": 0.0,
}


def two_settings(seeds: int = 8) -> list[dict[str, object]]:
    """Tuned trials where top wins, fixed ones where bottom wins (the replicate rows)."""
    fixed = [row | {"config/setting": "fixed"} for row in replicate_rows(seeds)]
    tuned = [
        row
        | {"trial_id": f"tuned_{row['trial_id']}", "config/setting": "tuned"}
        | {"eval_accuracy": row["eval_accuracy"] + (0.01 if row["strategy"] == "top" else 0.0)}
        for row in replicate_rows(seeds)
    ]
    return fixed + tuned


def test_two_settings_are_ranked_apart_tuned_first(tmp_path):
    rows = two_settings()
    rows[0]["status"] = "ERROR"  # fixed bottom seed 0: excluded from the fixed ranking only
    study = rank_into(write_csv(tmp_path / "t.csv", rows), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "ranking.csv", keep_default_na=False, na_values=[""])

    assert table["aggregation"].unique().tolist() == ["tuned_setting", "fixed_setting"]
    assert table.groupby("aggregation")["setting"].first().to_dict() == {
        "fixed_setting": "fixed",
        "tuned_setting": "tuned",
    }
    tuned = table[table["aggregation"] == "tuned_setting"].set_index("strategy")
    fixed = table[table["aggregation"] == "fixed_setting"].set_index("strategy")
    assert tuned.index[0] == "top" and fixed.index[0] == "odd"
    expected = np.mean(
        [r["eval_accuracy"] for r in rows if (r["strategy"], r["config/setting"]) == ("top", "tuned")]
    )
    assert tuned.loc["top", "mean"] == pytest.approx(expected) and tuned.loc["top", "n"] == 8
    assert (
        fixed.loc["bottom", "n"],
        fixed.loc["bottom", "n_excluded"],
        tuned.loc["bottom", "n_excluded"],
    ) == (7, 1, 0)
    assert top_strategy(study) == "top"
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "ranking_tuned_setting.png",
        "ranking_fixed_setting.png",
    }
    assert "## replicate stage, tuned setting" in (tmp_path / "out" / "report.md").read_text()


def test_one_setting_ranks_as_before(tmp_path):
    rows = [row | {"config/setting": "fixed"} for row in replicate_rows(3)]
    study = rank_into(write_csv(tmp_path / "t.csv", rows), tmp_path / "out")
    assert study.table["aggregation"].unique().tolist() == ["mean_over_seeds"]
    assert study.table["setting"].unique().tolist() == ["fixed"]
    assert top_strategy(study) == "bottom"
    plain = rank_into(write_csv(tmp_path / "plain.csv", replicate_rows(3)), tmp_path / "plain")
    assert plain.table["setting"].unique().tolist() == [""]


def search_rows() -> list[dict[str, object]]:
    """Two configurations per strategy, 3 seeds each; odd's better configuration was stopped
    after 2 of 4 epochs on every seed, so its full-budget best is its other one."""
    rows = []
    for strategy, offsets in {"bottom": (0.0, -0.1), "odd": (0.05, -0.2), "top": (-0.05, 0.02)}.items():
        for lr, offset in zip((1e-4, 1e-3), offsets, strict=True):
            for seed in range(3):
                epochs = 2 if (strategy, lr) == ("odd", 1e-4) else 4
                config = SEARCHED | {"config/lr": lr, "config/seed": seed, "config/batch_size": 16 + seed}
                rows.append(trial(strategy, seed, 0.8 + offset + 0.001 * seed, epochs=epochs, **config))
    return rows


def test_search_ranks_full_budget_trials_by_their_hyperparameters(tmp_path):
    source = write_csv(tmp_path / "search.csv", search_rows())
    out, report = tmp_path / "ranking.csv", tmp_path / "report.md"
    assert main([str(source), "--stage", "search", "--out", str(out), "--report", str(report)]) == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    best = table[table["aggregation"] == "best_config"].set_index("strategy")
    assert best.index.tolist() == ["top", "bottom", "odd"]
    assert best.loc["odd", "mean"] == pytest.approx(0.601) and best.loc["odd", "n_excluded"] == 3
    assert best.loc["odd", "config"] == "temperature=2, alpha_ce=0.5, alpha_kd=0.5, alpha_cos=0, lr=0.001"
    assert "seed 1: stopped early by the scheduler after 2 epoch(s)" in best.loc["odd", "excluded"]
    over = table[table["aggregation"] == "mean_over_configs"].set_index("strategy")
    assert over.loc["odd", "n"] == 3 and over.loc["bottom", "n"] == 6
    text = report.read_text()
    assert (
        text.count("Search-stage rankings compare full-budget trials only (trials that ran all 4 epochs)")
        == 1
    )
    assert "different numbers of epochs" not in text


@pytest.mark.parametrize(
    ("metric", "retention"),
    [("eval_f1", True), ("eval_matched_f1", False), ("test_f1", False), ("eval_loss", False)],
)
def test_teacher_and_init_scores_follow_the_metric(tmp_path, metric, retention):
    rows = [
        row
        | {"eval_f1": row["eval_accuracy"] - 0.1, "init_f1": 0.3, "teacher_f1": 0.8}
        | {"eval_matched_f1": row["eval_accuracy"] - 0.2, "test_f1": row["eval_accuracy"] - 0.15}
        | {"eval_loss": 1 - row["eval_accuracy"]}
        for row in replicate_rows(3)
    ]
    table = rank_into(write_csv(tmp_path / "t.csv", rows), tmp_path / "out", metric=metric).table
    bottom = table.set_index("strategy").loc["bottom"]
    f1 = metric != "eval_loss"
    assert bottom["init_score"] == pytest.approx(0.3 if f1 else np.nan, nan_ok=True)
    assert bottom["teacher_score"] == pytest.approx(0.8 if f1 else np.nan, nan_ok=True)
    assert table["rank"].iloc[0] == 1 and table["strategy"].iloc[0] == "bottom"
    if retention:
        assert bottom["retention"] == pytest.approx(bottom["mean"] / 0.8)
    else:
        assert table["retention"].isna().all()
    report = (tmp_path / "out" / "report.md").read_text()
    assert ("- Teacher f1 on the validation set: 0.8\n" in report) == f1
    assert "| init |" in report and "| teacher |" in report


def constant_rows() -> list[dict[str, object]]:
    """Every seed of a strategy scores the same: its bootstrap CI is the value, its mean may be
    one ulp off it."""
    return [
        trial(s, seed, {"bottom": 0.83, "top": 0.47, "odd": 0.87, "scratch": 0.2}[s])
        for s in MEANS
        for seed in range(5)
    ]


def with_nan_and_unfinished() -> list[dict[str, object]]:
    rows = replicate_rows(4)
    rows[1]["eval_accuracy"] = np.nan
    return [row | {"status": "ERROR"} if row["strategy"] == "scratch" else row for row in rows]


@pytest.mark.parametrize(
    "rows",
    [constant_rows(), replicate_rows(1), with_nan_and_unfinished()],
    ids=["constant", "one_seed", "nan_and_no_finished_trial"],
)
def test_plot_is_drawn_for_anything_that_can_be_ranked(tmp_path, capsys, rows):
    plot = tmp_path / "plots" / "ranking.png"
    assert (
        main(
            [str(write_csv(tmp_path / "t.csv", rows)), "--out", str(tmp_path / "r.csv"), "--plot", str(plot)]
        )
        == 0
    )
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert "warning" not in capsys.readouterr().err


def test_a_failing_plot_or_report_costs_a_warning_not_the_ranking(tmp_path, capsys, monkeypatch):
    def broken(*args: object) -> None:
        raise ValueError("'yerr' must not contain negative values\nsecond line")

    monkeypatch.setattr(analysis.outputs, "plot_metric", broken)
    monkeypatch.setattr(analysis.outputs, "write_report", broken)
    out, plot, report = tmp_path / "r.csv", tmp_path / "r.png", tmp_path / "r.md"
    argv = [str(write_csv(tmp_path / "t.csv", replicate_rows(3))), "--out", str(out), "--plot", str(plot)]
    assert main([*argv, "--report", str(report), "--trials", str(tmp_path / "trials.csv")]) == 0
    assert len(pd.read_csv(out)) == 4 and (tmp_path / "trials.csv").is_file()
    assert not plot.exists() and not report.exists()
    captured = capsys.readouterr()
    assert f"warning: skipped {plot}: ValueError: 'yerr' must not contain negative values\n" in captured.err
    assert f"warning: skipped {report}: ValueError" in captured.err and "second line" not in captured.err
    assert f"wrote: {out}, {tmp_path / 'trials.csv'}" in captured.out


def test_out_into_a_missing_folder_creates_it_and_a_folder_or_unwritable_path_exits_2(tmp_path, capsys):
    source = str(write_csv(tmp_path / "t.csv", replicate_rows(3)))
    assert main([source, "--out", str(tmp_path / "new" / "deeper" / "r.csv")]) == 0
    assert (tmp_path / "new" / "deeper" / "r.csv").is_file()

    assert main([source, "--out", str(tmp_path / "new")]) == 2
    assert "is an existing folder; name the file to write" in capsys.readouterr().err
    assert main([source, "--out", str(tmp_path / "t.csv" / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "Cannot write the ranking CSV" in err and "Traceback" not in err


def test_console_table_shows_each_ranking_compactly(tmp_path):
    rows = two_settings(3)
    study = rank_into(write_csv(tmp_path / "t.csv", rows), tmp_path / "out")
    text = console_table(study)
    blocks = text.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith("replicate stage, tuned setting (eval_accuracy): rank")
    lines = blocks[0].splitlines()
    tuned = study.ranked[0].ranking.table.set_index("strategy")
    half = (tuned.loc["top", "ci_high"] - tuned.loc["top", "ci_low"]) / 2
    assert lines[1].split() == [
        "1",
        "top",
        "4,5,6",
        f"{tuned.loc['top', 'mean']:.4f}",
        "±",
        f"{half:.4f}",
        "yes",
    ]
    assert lines[4].split()[:3] == ["4", "scratch", "-"] and lines[4].endswith("undecided")
    assert len(lines) == 5  # the significance and power sentences are in report.md
    report = (tmp_path / "out" / "report.md").read_text()
    assert "top has the best mean, but with these sample sizes" in report
    assert "Power: the smallest gap to top" in report


def test_top_strategy_is_none_when_nothing_is_ranked(tmp_path):
    rows = [row | {"config/setting": "fixed"} for row in replicate_rows(3)]
    rows += [
        row | {"trial_id": f"t{i}", "config/setting": "tuned", "status": "ERROR"}
        for i, row in enumerate(rows)
    ]
    study = rank_into(write_csv(tmp_path / "t.csv", rows), Path(tmp_path / "out"))
    assert [r.sample.aggregation for r in study.ranked] == ["tuned_setting", "fixed_setting"]
    assert top_strategy(study) is None
    assert study.ranked[0].ranking.table["n"].tolist() == [0, 0, 0, 0]


def test_trials_of_an_unknown_setting_beside_both_settings_exit_2(tmp_path, capsys):
    rows = two_settings(3) + [trial("top", 9, 0.8)]  # an older trial without config/setting
    assert main([str(write_csv(tmp_path / "t.csv", rows)), "--out", str(tmp_path / "r.csv")]) == 2
    assert "1 of them name another config/setting (nan)" in capsys.readouterr().err


def test_the_report_says_whether_the_tuned_settings_were_selected_on_the_ranked_rows(tmp_path):
    """Without selection rows the search chose on the validation rows the ranking then compares."""
    reused = rank_into(write_csv(tmp_path / "a.csv", two_settings()), tmp_path / "a")
    assert any("reuses its selection rows" in note for note in reused.notes)
    assert "reuses its selection rows" in (tmp_path / "a" / "report.md").read_text()
    apart = [row | {"selection_accuracy": row["eval_accuracy"] - 0.01} for row in two_settings()]
    separate = rank_into(write_csv(tmp_path / "b.csv", apart), tmp_path / "b")
    assert any("no choice was made" in note for note in separate.notes)
    fixed_only = [row for row in two_settings() if row["config/setting"] == "fixed"]
    assert not any(
        "selected" in note
        for note in rank_into(write_csv(tmp_path / "c.csv", fixed_only), tmp_path / "c").notes
    )


def test_a_study_where_every_strategy_scores_the_same_has_no_best_but_a_top_strategy(tmp_path):
    """All at chance on every seed: the report says all strategies tie and names no best; the
    study still exports the first listed of the rank-1 strategies."""
    rows = [trial(s, seed, 0.346) for s in MEANS for seed in range(8)]
    study = rank_into(write_csv(tmp_path / "t.csv", rows), tmp_path / "out")

    ranking = study.ranked[0].ranking
    assert ranking.best is None and ranking.table["rank"].tolist() == [1, 1, 1, 1]
    assert top_strategy(study) == "bottom" == ranking.table["strategy"].iloc[0]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "All strategies tie: each has the same mean (0.346), so there is no best" in report
    assert "Power: all strategies tie" in report
    assert " is best" not in report and "would make it decidable" not in report
    assert all(line.endswith(" -") for line in console_table(study).splitlines()[1:])  # nothing tested

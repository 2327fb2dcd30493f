"""The published rankings under docs/ re-rank from their committed per-trial CSVs to the committed tables,
and the tables of the README and of each study's docs/<study>/README.md say what those rankings say."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.rank import main

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

# The 12 -> 6 study's parts, each in its own folder, ranked together as the README's command does.
PARTS_12TO6 = sorted(str(path.relative_to(DOCS)) for path in DOCS.glob("mnli-12to6/*/trials.csv"))

# The second 12 -> 6 study (10 epochs), ranked on its own: its trials differ in more than the seed.
LONG_12TO6 = "mnli-12to6-10-epochs/trials.csv"

# The 12 -> 6 strategies that ran every part's seeds; the others ran fewer and are ranked in ranking_all.
FULL_12TO6 = ["bottom", "top", "odd", "even", "distilbert"]

# Each published ranking: its per-trial CSV(s), the stage and metric it ranks, the strategies it
# keeps (all when empty) and the table.
PUBLISHED = [
    (["mnli/trials.csv"], "replicate", "eval_accuracy", [], "mnli/ranking.csv"),
    (["mnli/trials.csv"], "replicate", "test_accuracy", [], "mnli/ranking_hard_matched.csv"),
    (["mnli/search/trials.csv"], "search", "selection_accuracy", [], "mnli/search/ranking.csv"),
    (["sst2/trials.csv"], "replicate", "eval_accuracy", [], "sst2/ranking.csv"),
    (PARTS_12TO6, "replicate", "eval_accuracy", FULL_12TO6, "mnli-12to6/ranking.csv"),
    (PARTS_12TO6, "replicate", "test_accuracy", FULL_12TO6, "mnli-12to6/ranking_hard_matched.csv"),
    (PARTS_12TO6, "replicate", "eval_accuracy", [], "mnli-12to6/ranking_all.csv"),
    ([LONG_12TO6], "replicate", "eval_accuracy", [], "mnli-12to6-10-epochs/ranking.csv"),
    ([LONG_12TO6], "replicate", "test_accuracy", [], "mnli-12to6-10-epochs/ranking_hard_matched.csv"),
]


@pytest.mark.parametrize(
    ("inputs", "stage", "metric", "strategies", "table"), PUBLISHED, ids=[p[-1] for p in PUBLISHED]
)
def test_published_ranking_is_reproduced_from_its_trials(
    inputs: list[str], stage: str, metric: str, strategies: list[str], table: str, tmp_path: Path
) -> None:
    out = tmp_path / "ranking.csv"
    paths = [str(DOCS / path) for path in inputs]
    chosen = ["--strategies", *strategies] if strategies else []
    assert main([*paths, "--stage", stage, "--metric", metric, *chosen, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(DOCS / table), rtol=1e-9)


# A README table follows a marker naming its ranking CSV (and the aggregation, when it holds several).
TABLE = re.compile(r"<!-- ranking: (\S+?)(?: (\S+))? -->\n((?:\|.*\|\n)+)")
# README column -> ranking column(s)
COLUMNS = {
    "rank": ["rank"],
    "strategy": ["strategy"],
    "teacher layers": ["teacher_layers"],
    "n": ["n"],
    "mean": ["mean"],
    "95% CI": ["ci_low", "ci_high"],
    "mean rank": ["mean_rank"],
    "p vs best": ["p_vs_best"],
    "tied with best": ["tied_with_best"],
    "retention": ["retention"],
    "init accuracy": ["init_score"],
    "race": ["race_status"],
    "race round": ["race_round"],
}


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def same(shown: str, value: object) -> bool:
    """A number agrees to the digits shown; text (and an empty cell) exactly; "—" is no layers."""
    if re.fullmatch(r"-?\d+(\.\d+)?", shown) and value != "":
        decimals = len(shown.partition(".")[2])
        return abs(float(shown) - float(value)) <= 0.5 * 10**-decimals + 1e-12
    return shown.replace("—", "") == str(value)


def documents() -> list[Path]:
    """The README and every study's own README under docs/."""
    return [REPO / "README.md", *sorted(DOCS.glob("*/README.md"))]


def test_readme_tables_are_the_published_rankings() -> None:
    tables = [table for document in documents() for table in TABLE.findall(document.read_text())]
    assert len(tables) >= 3
    for path, aggregation, text in tables:
        ranking = pd.read_csv(REPO / path, keep_default_na=False, dtype=str)
        if aggregation:
            ranking = ranking[ranking["aggregation"] == aggregation]
        header, _, *rows = text.splitlines()
        names = cells(header)
        assert len(rows) == len(ranking), path
        for row, (_, expected) in zip(rows, ranking.iterrows(), strict=True):
            for name, shown in zip(names, cells(row), strict=True):
                parts = shown.strip("[]").split(", ") if name == "95% CI" else [shown]
                for part, column in zip(parts, COLUMNS[name], strict=True):
                    assert same(part, expected[column]), f"{path} {expected['strategy']} {name}: {shown}"


def test_each_12to6_part_keeps_what_reproduces_it() -> None:
    """Settings, teacher record, per-trial CSV and per-epoch history; one teacher and one set of
    data-driven layers across the parts and the 10-epoch study."""
    assert PARTS_12TO6
    records = []
    for trials in [*PARTS_12TO6, LONG_12TO6]:
        part = (DOCS / trials).parent
        assert {"study.yaml", "stage.json", "trials.csv", "trials_history.csv"} <= {
            p.name for p in part.iterdir()
        }
        records.append(json.loads((part / "stage.json").read_text()))
    assert len({record["teacher_hash"] for record in records}) == 1
    chosen: dict[str, set[tuple[int, ...]]] = {}  # a part may run only some of the strategies
    for record in records:
        for strategy, choice in record["strategies"].items():
            chosen.setdefault(strategy, set()).add(tuple(choice["layers"]))
    assert all(len(layer_sets) == 1 for layer_sets in chosen.values()), chosen


def test_the_12to6_sentences_say_what_the_parts_say(tmp_path: Path) -> None:
    """The 12 -> 6 study's sentences that quote results: the hard_matched order, the line on the
    last epoch of the report over all strategies (re-ranked from the parts here) and on how many
    seeds the leader was first among the strategies that ran every seed."""
    text = " ".join((DOCS / "mnli-12to6" / "README.md").read_text().split())
    assert means_line(pd.read_csv(DOCS / "mnli-12to6" / "ranking_hard_matched.csv")) in text

    assert last_epoch_line(PARTS_12TO6, tmp_path) in text

    trials = read_trials(PARTS_12TO6)
    assert firsts(trials[trials["strategy"].isin(FULL_12TO6)], "mnli-12to6/ranking.csv") in text


def read_trials(inputs: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(DOCS / path) for path in inputs], ignore_index=True)


def means_line(ranking: pd.DataFrame) -> str:
    """Each strategy and its mean in the ranking's order, to the README's three decimals."""
    return ", ".join(f"{row.strategy} {row.mean:.3f}" for row in ranking.itertuples())


def last_epoch_line(inputs: list[str], tmp_path: Path) -> str:
    """The line on each trial's last epoch of the report over every strategy, re-ranked here."""
    report = tmp_path / "report.md"
    paths = [str(DOCS / path) for path in inputs]
    assert main([*paths, "--out", str(tmp_path / "ranking.csv"), "--report", str(report)]) == 0
    lines = report.read_text().splitlines()
    return " ".join(next(line for line in lines if "over each trial's last epoch" in line.lower()).split())


def firsts(trials: pd.DataFrame, ranking: str) -> str:
    """On how many seeds the ranking's leader scored best, as the README says it."""
    leader = pd.read_csv(DOCS / ranking)["strategy"].iloc[0]
    best = trials.groupby("seed")["eval_accuracy"].transform("max")
    count = trials[(trials["eval_accuracy"] == best) & (trials["strategy"] == leader)]["seed"].nunique()
    return f"{leader} is first on {count} of {trials['seed'].nunique()} seeds"


def test_the_10_epoch_sentences_say_what_its_trials_say(tmp_path: Path) -> None:
    """The 10-epoch study's sentences: the same seeds and strategies at 5 epochs, the leader's
    seeds, the hard_matched order and its report's line on the last epoch."""
    text = " ".join((DOCS / "mnli-12to6" / "README.md").read_text().split())
    long = pd.read_csv(DOCS / LONG_12TO6)
    order = pd.read_csv(DOCS / "mnli-12to6-10-epochs" / "ranking.csv")["strategy"]
    short = read_trials(PARTS_12TO6)
    short = short[short["seed"].isin(long["seed"]) & short["status"].eq("TERMINATED")]
    means = short.groupby("strategy")["eval_accuracy"].mean().reindex(order)
    assert means_line(means.rename("mean").reset_index()) in text
    assert firsts(long, "mnli-12to6-10-epochs/ranking.csv") in text

    assert means_line(pd.read_csv(DOCS / "mnli-12to6-10-epochs" / "ranking_hard_matched.csv")) in text
    assert last_epoch_line([LONG_12TO6], tmp_path) in text


def test_the_speed_section_quotes_the_committed_benchmark_run() -> None:
    """Every measured number of the speed page (docs/benchmarks/README.md) is the committed benchmark
    run's, and the claims the page makes of them hold there."""
    run = json.loads((DOCS / "benchmarks" / "trial_speed.json").read_text())
    speed = " ".join((DOCS / "benchmarks" / "README.md").read_text().split())
    step, peak, dropout = run["student_step"], run["matmul_peak"], run["dropout"]
    precision, overhead, studies = run["precision"], run["overhead"], run["studies"]

    def row(trial: dict) -> str:
        wall, share = f"{trial['trial_wall_s']:.1f} s", percent(trial["overhead_fraction"])
        return f"| {trial['examples_per_s']} | {wall} | {share} | {trial['eval_accuracy']:.3f} |"

    quoted = [
        f"one run of {round(run['wall_s'] / 60)} minutes",
        f"| naive loop | {run['naive']['examples_per_s']} | — | — | {run['naive']['eval_accuracy']:.3f} |",
        row(run["trainable_cold"]),
        row(run["trainable_warm"]),
        f"trains {run['loop_speedup']}× as many examples per second",
        f"fp32 reached {accuracies(precision['fp32']['eval_accuracy'])} and bf16 "
        f"{accuracies(precision['bf16']['eval_accuracy'])}",
        f"(means {precision['fp32']['mean']:.3f} and {precision['bf16']['mean']:.3f})",
        f"bf16 trained {precision['bf16_speedup']}× faster",
        f"{dropout['ms_per_step']['torch']} ms with torch's dropout and {dropout['ms_per_step']['fast']} ms "
        f"with this one ({dropout['speedup']}×)",
        f"{step['forward_backward_gflops']} GFLOP/s in bf16, {percent(step['fraction_of_peak'])} of the "
        f"{peak['bf16']['gflops']} GFLOP/s bf16 matmul peak",
        f"(fp32 peak: {peak['fp32']['gflops']} GFLOP/s)",
        f"wall time, {percent(overhead['scored_every_epoch'])} is still not training",
        f"spend {percent(overhead['scored_after_the_last_epoch'])} of their time outside training",
        f"same accuracies ({accuracies(overhead['eval_accuracy_after_the_last_epoch'])})",
        f"ran {studies['before']['trials_per_hour']} trials/hour",
        f"{studies['after']['trials_per_hour']} trials/hour as it runs them now "
        f"({studies['trials_per_hour_speedup']}×)",
        f"mean accuracy {studies['before']['mean_eval_accuracy']:.3f} and "
        f"{studies['after']['mean_eval_accuracy']:.3f}",
        f"({studies['concurrency']['2_trials_x_1_thread']} against "
        f"{studies['concurrency']['1_trial_x_2_threads']} trials/hour)",
    ]
    assert [text for text in quoted if text not in speed] == []
    assert overhead["same_accuracy"] and precision["within_seed_noise"]
    assert studies["concurrency"]["2_trials_x_1_thread"] > studies["concurrency"]["1_trial_x_2_threads"]


def percent(fraction: float) -> str:
    return f"{round(100 * fraction)}%"


def accuracies(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


# The README's results table: each row's ranking (and aggregation), in the table's order.
RESULTS = [
    ("mnli-12to6/ranking.csv", None),
    ("mnli/ranking.csv", "tuned_setting"),
    ("mnli/ranking.csv", "fixed_setting"),
    ("sst2/ranking.csv", None),
]


def test_the_readme_results_table_says_what_each_ranking_says() -> None:
    text = (REPO / "README.md").read_text()
    rows = text.split("<!-- results -->\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(rows) == len(RESULTS)
    for row, (path, aggregation) in zip(rows, RESULTS, strict=True):
        ranking = pd.read_csv(DOCS / path)
        if aggregation:
            ranking = ranking[ranking["aggregation"] == aggregation]
        _, _, best, tied, trials, details = cells(row)
        others = ranking["strategy"].iloc[1:][ranking["tied_with_best"].iloc[1:].eq(True)].tolist()
        assert best == ranking["strategy"].iloc[0], row
        assert tied == (", ".join(others) or "—"), row
        assert int(trials) == ranking["n"].sum(), row
        assert path.split("/")[0] in details, row


def test_the_sampler_section_quotes_the_committed_benchmark_run() -> None:
    """docs/benchmarks' TPE-against-random table is the committed run's, row for row, and its summary
    means are those of the runs."""
    run = json.loads((DOCS / "benchmarks" / "search_samplers.json").read_text())
    page = (DOCS / "benchmarks" / "README.md").read_text()
    rows = page.split("<!-- samplers -->\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    tpe, rand = run["runs"]["tpe"], run["runs"]["random"]
    assert len(rows) == run["sampler_seeds"] == len(tpe) == len(rand) == 3
    for line, t, r in zip(rows, tpe, rand, strict=True):
        assert t["best_selection_accuracy"] == r["best_selection_accuracy"]
        assert t["best_is_the_fixed_setting"] and r["best_is_the_fixed_setting"]
        expected = [
            str(t["sampler_seed"]),
            f"{t['best_selection_accuracy']:.3f}",
            str(t["sampled_full_budget"]),
            str(r["sampled_full_budget"]),
            f"{t['best_sampled_selection_accuracy']:.3f}",
            f"{r['best_sampled_selection_accuracy']:.3f}",
        ]
        assert cells(line) == expected, line
    for key, summary in run.items():
        if isinstance(summary, dict) and "mean" in summary:
            for sampler, runs in run["runs"].items():
                assert summary["mean"][sampler] == pytest.approx(
                    sum(r[key] for r in runs) / len(runs), abs=5e-5
                )
    text = " ".join(page.split())
    full, best = run["sampled_full_budget"]["mean"], run["best_sampled_selection_accuracy"]["mean"]
    assert f"({full['tpe']:.0f} against {full['random']:.1f} a search)" in text
    assert f"scored {best['tpe']:.3f} against {best['random']:.3f}" in text
    assert f"{tpe[0]['its_validation_accuracy']:.3f} on validation" in text
    assert [r["failed"] for r in rand] == [0, 0, 1] and all(t["failed"] == 0 for t in tpe)
    for t, r in zip(tpe, rand, strict=True):  # the same start-up trials, then TPE's own
        assert t["settings_in_order"][:4] == r["settings_in_order"][:4]
        assert t["settings_in_order"][4] != r["settings_in_order"][4]
    assert f"(lr {rand[2]['settings_in_order'][3][-1]:.2g})" in text


def test_the_readme_says_what_the_sampler_run_found() -> None:
    run = json.loads((DOCS / "benchmarks" / "search_samplers.json").read_text())
    fixed = sum(r["best_is_the_fixed_setting"] for runs in run["runs"].values() for r in runs) // 2
    seeds = run["sampler_seeds"]
    text = " ".join((REPO / "README.md").read_text().split())
    assert (
        f"at {run['budget']} trials on SST-2 both picked the fixed setting on {fixed} of {seeds} seeds"
        in text
    )

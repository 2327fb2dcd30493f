"""docs/mnli-subsets, the raced study of every 3-layer subset of a 6-layer teacher: its ranking
re-ranks from the committed trials and race record, and its page says what they say."""

import json
from pathlib import Path

import pandas as pd

from analysis.racing import RaceDesign
from analysis.rank import main
from trainables.strategies.registry import select_layers

SUBSETS = Path(__file__).resolve().parents[1] / "docs" / "mnli-subsets"
FIXED_RULES = ("bottom", "top", "odd", "even", "uniform")
DATA_DRIVEN = ("auto:bi", "auto:drop")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def shared_means() -> tuple[pd.Series, list[int]]:
    """Each strategy's mean eval_accuracy over the seeds every strategy finished, and those seeds."""
    trials = pd.read_csv(SUBSETS / "trials.csv")
    finished = trials[trials["status"] == "TERMINATED"]
    seeds = set.intersection(*(set(group["seed"]) for _, group in finished.groupby("strategy")))
    shared = finished[finished["seed"].isin(seeds)]
    return shared.groupby("strategy")["eval_accuracy"].mean(), sorted(seeds)


def rule_rows() -> list[tuple[str, str, float, int, float, str]]:
    """Per layer rule: its layers, mean on the shared seeds, rank among the subsets there (1 = best),
    regret (the best subset's mean less its own) and the race's verdict on its subset."""
    means, _ = shared_means()
    subsets = means[means.index.str.startswith("custom:")]
    ranks = subsets.rank(ascending=False, method="min").astype(int)
    status = pd.read_csv(SUBSETS / "ranking.csv").set_index("strategy")["race_status"]
    picks = json.loads((SUBSETS / "auto-picks" / "stage.json").read_text())["strategies"]
    rules = {rule: select_layers(rule, 6, 3) for rule in FIXED_RULES}
    rules |= {rule: picks[rule]["layers"] for rule in DATA_DRIVEN}
    rows = []
    for rule, layers in rules.items():
        subset = "custom:" + ",".join(map(str, layers))
        regret = subsets.max() - means[subset]
        rows.append(
            (rule, ",".join(map(str, layers)), means[subset], int(ranks[subset]), regret, status[subset])
        )
    return rows


def test_the_race_ranking_is_reproduced_from_its_trials(tmp_path: Path) -> None:
    out = tmp_path / "ranking.csv"
    args = [str(SUBSETS / "trials.csv"), "--race", str(SUBSETS / "race.json"), "--out", str(out)]
    assert main(args) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(SUBSETS / "ranking.csv"), rtol=1e-9)


def test_every_subset_and_the_control_ran_the_shared_seeds() -> None:
    means, seeds = shared_means()
    assert len(means[means.index.str.startswith("custom:")]) == 20 and "scratch" in means
    assert seeds == [0, 1, 2, 3, 4]  # scratch, {1,2,3} and {1,4,6} were dropped after seed 4


def test_the_page_places_each_rule_among_the_subsets() -> None:
    text = (SUBSETS / "README.md").read_text()
    lines = text.split("<!-- rules -->\n", 1)[1].split("\n\n", 1)[0].strip().splitlines()[2:]
    rows = rule_rows()
    assert len(lines) == len(rows)
    for line, (rule, layers, mean, rank, regret, status) in zip(lines, rows, strict=True):
        shown = cells(line)
        assert shown[:2] == [rule, layers], line
        assert abs(float(shown[2]) - mean) <= 5e-4 + 1e-12, line
        assert int(shown[3]) == rank, line
        assert abs(float(shown[4]) - regret) <= 5e-4 + 1e-12, line
        assert shown[5] == status, line


def test_the_page_says_what_the_race_record_says() -> None:
    """The race stopped at its trial budget before seed 7, after 139 of the 168 trials a full 8-seed
    grid of 21 strategies runs, with the drops the page lists, round by round."""
    race = json.loads((SUBSETS / "race.json").read_text())
    fixed = race["races"]["fixed"]
    text = " ".join((SUBSETS / "README.md").read_text().split())
    assert fixed["reason"] == "budget" and race["design"]["max_seeds"] == 8 and fixed["round"] == 7
    trials = pd.read_csv(SUBSETS / "trials.csv")
    assert len(trials) == fixed["trials_used"] == 139 == 21 * 5 + 18 + 16
    assert f"ran 139 trials in {race['hours']:.2f} hours" in text and "8 seeds would have run 168" in text
    assert "used 139 of the 168 trials of a full 8-seed grid (83%)" in text and round(100 * 139 / 168) == 83
    assert "first drop needs a paired p of at most 3.75e-05" in text
    assert f"{fixed['design']['thresholds'][0]:.3g}" == "3.75e-05"
    gaps = RaceDesign.from_dict(fixed["design"]).first_drop_gaps()
    assert f"a mean gap of {gaps[3]:.2g} standard deviations of the per-seed gaps after 3 seeds, " in text
    assert f"{gaps[4]:.2g} after 4 and {gaps[5]:.2g} after 5" in text
    assert min(drop["round"] for drop in fixed["dropped"]) == 5
    assert f"with {len(fixed['survivors'])} of the 20 subsets still undecided" in text
    assert f"its answer is a leader, {{{fixed['leader'].removeprefix('custom:')}}}, not a winner" in text
    dropped = {}
    for drop in fixed["dropped"]:
        dropped.setdefault(drop["round"] - 1, []).append(drop["strategy"])
    said = text.split("It dropped 11 strategies: ", 1)[1].split(". ", 1)[0]
    assert sum(len(names) for names in dropped.values()) == 11
    for seed, names in dropped.items():
        part = said.split(f"after seed {seed}", 1)[0].rsplit("after seed", 1)[-1]
        for name in names:
            shown = "scratch" if name == "scratch" else "{" + name.removeprefix("custom:") + "}"
            assert shown in part, name


def test_the_main_readme_says_where_odd_stands() -> None:
    text = " ".join((SUBSETS.parents[1] / "README.md").read_text().split())
    odd = next(row for row in rule_rows() if row[0] == "odd")
    status = pd.read_csv(SUBSETS / "ranking.csv").set_index("strategy")
    assert odd[5] == "undecided" and int(status.at["custom:1,3,5", "rank"]) == 2
    assert "odd {1,3,5} second of the 20 after seeds 0-6 and not told apart from the leader {2,3,5}" in text
    assert status.index[0] == "custom:2,3,5" and status.iloc[0]["race_status"] == "leader"
    assert "stopped at its trial budget before seed 7, with 11 strategies dropped" in text

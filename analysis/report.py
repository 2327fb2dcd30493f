"""Reports of one or more rankings: in Markdown (how much of the teacher's gain over a constant
predictor each strategy keeps, the significance sentence, which strategies collapsed to one
prediction, the power estimate, the table, the plots) and as a compact table for the terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.pairwise import MANN_WHITNEY, WILCOXON
from analysis.power import ALPHA, POWER, listed
from analysis.raced import race_summary
from analysis.ranked import RankedSample, RankedStage
from analysis.stats import Ranking

_TEST_NAMES = {WILCOXON: "Wilcoxon signed-rank", MANN_WHITNEY: "Mann-Whitney U"}
_COLUMNS = {
    "rank": "rank",
    "strategy": "strategy",
    "config": "config",
    "teacher_layers": "teacher layers",
    "n": "n",
    "mean": "mean",
    "std": "std",
    "ci": "95% CI",
    "mean_rank": "mean rank",
    "race_status": "race",
    "race_round": "round",
    "p_vs_best": "p vs best",
    "race_threshold": "threshold",
    "tied_with_best": "tied with best",
    "n_collapsed": "collapsed",
    "retention_above_baseline": "retention above baseline",
    "retention": "retention",
    "teacher_score": "teacher",
    "baseline_score": "baseline",
    "init_score": "init",
    "student_params": "student params",
    "n_excluded": "excluded",
}
# Columns that results without baselines or collapse flags (older studies) leave empty: not shown then.
_OPTIONAL = ("n_collapsed", "retention_above_baseline", "baseline_score")


@dataclass(frozen=True)
class Section:
    """One ranking in the report, under its heading, with its plots and what its learning curves
    did at the end (`analysis.curves.last_epoch_sentence`)."""

    heading: str
    ranking: Ranking
    verdict: Sequence[str] = field(default_factory=tuple)
    plots: Sequence[Path] = field(default_factory=tuple)
    curves: str = ""


def baseline_sentence(ranking: Ranking) -> str:
    """E.g. "Above the baseline (a constant predictor: 0.812; the teacher: 0.832), odd keeps 15% of the
    teacher's gain, even 5%, bottom 0% and scratch 0% (retention above baseline)." in ranking order;
    "" where the ranking has no retention above baseline."""
    table = ranking.table[ranking.table["n"] > 0]
    if "retention_above_baseline" not in table or table["retention_above_baseline"].isna().all():
        return ""
    shown = table[table["retention_above_baseline"].notna()]
    baseline = ", ".join(f"{value:.4g}" for value in shown["baseline_score"].unique())
    teacher = ", ".join(f"{value:.4g}" for value in shown["teacher_score"].unique())
    kept = [f"{row.strategy} {round(100 * row.retention_above_baseline)}%" for row in shown.itertuples()]
    kept[0] = kept[0].replace(" ", " keeps ", 1) + " of the teacher's gain"
    return (
        f"Above the baseline (a constant predictor: {baseline}; the teacher: {teacher}), {listed(kept)} "
        f"(retention above baseline)."
    )


def collapse_sentence(ranking: Ranking) -> str:
    """Which strategies learnt nothing (every trial's predictions collapsed to one class, or a
    near-constant score, on the ranked split), and which had some trials collapse, naming them; a
    strategy that learnt nothing is said to, even where the table calls it tied with the best. ""
    where no trial collapsed or the trials do not say."""
    table = ranking.table
    if "n_collapsed" not in table:
        return ""
    hit = table[(table["n"] > 0) & (table["n_collapsed"].fillna(0) > 0)]
    if hit.empty:
        return ""
    block, parts = ranking.block_name, []
    nothing = hit[hit["n_collapsed"] >= hit["n"]]
    if len(nothing):
        names = nothing["strategy"].tolist()
        counts = ", ".join(f"{row.strategy} {row.n_collapsed} of {row.n}" for row in nothing.itertuples())
        one = len(names) == 1
        sentence = (
            f"{listed(names)} learnt nothing: every one of {'its' if one else 'their'} students predicted "
            f"one class (or a near-constant score) for every row of the ranked split ({counts} collapsed), "
            f"so {'it scores' if one else 'they score'} what a constant prediction scores"
        )
        tied = nothing.loc[nothing["tied_with_best"].eq(True).fillna(False), "strategy"].tolist()
        if tied:
            sentence += (
                f"; that {listed(tied)} {_be(tied)} tied with the best means only that the best is not "
                f"significantly better than a student that learnt nothing"
            )
        parts.append(sentence + ".")
    some = hit[hit["n_collapsed"] < hit["n"]]
    if len(some):
        named = [f"{r.strategy} {r.n_collapsed} of {r.n} ({block}: {r.collapsed})" for r in some.itertuples()]
        parts.append(f"Collapsed to one prediction on the ranked split: {'; '.join(named)}.")
    return " ".join(parts)


def verdict_sentences(ranked: RankedSample) -> list[str]:
    """What a ranking concludes: the retention above the baseline; a race's decisions, else the
    significance sentence; which strategies collapsed; and, outside a race, the power sentence.
    Empty sentences are left out."""
    ranking = ranked.ranking
    if ranked.race is not None:
        decided = race_summary(ranked.race, len(ranked.sample.trials))
        sentences = [baseline_sentence(ranking), *decided, collapse_sentence(ranking)]
    else:
        sentences = [
            baseline_sentence(ranking),
            significance_sentence(ranking),
            collapse_sentence(ranking),
            power_sentence(ranking),
        ]
    return [s for s in sentences if s]


def significance_sentence(ranking: Ranking) -> str:
    """E.g. "bottom is best; top and odd are not significantly worse (p > 0.05); scratch is
    significantly worse (p <= 0.05) (Holm-corrected Wilcoxon signed-rank tests against bottom).
    Across all strategies, the Friedman test gives p = 0.001: the strategies differ."
    Strategies that share the best mean are named together; when every strategy does, they all tie.
    """
    if ranking.all_tie:
        mean = ranking.table["mean"].iloc[0]
        return (
            f"All strategies tie: each has the same mean ({mean:.4g}), so there is no best to test the "
            f"others against.{_friedman_clause(ranking)}"
        )
    best = ranking.best
    if best is None:
        return "No strategy has a usable value, so nothing is ranked."
    return _against_best(ranking, best) + _friedman_clause(ranking)


def _against_best(ranking: Ranking, best: str) -> str:
    table = ranking.table
    others = table[(table["strategy"] != best) & (table["n"] > 0)]
    leaders = table.loc[table["rank"].eq(1).fillna(False), "strategy"].tolist()
    head = f"{best} has the best mean" if len(leaders) == 1 else f"{listed(leaders)} share the best mean"
    tested = others[others["p_vs_best"].notna()]
    if tested.empty:
        subject = "it is" if len(leaders) == 1 else "they are"
        return f"{head}; whether {subject} significantly better is undefined here."
    if ranking.smallest_p > ALPHA:
        return (
            f"{head}, but {_limit(ranking)} no strategy can test as significantly worse "
            f"({_tests_clause(ranking, best)} "
            f"cannot give p <= {ALPHA}; the smallest attainable p is {ranking.smallest_p:.3g}), so whether "
            f"the others tie with {best} is undetermined."
        )
    verdicts = tested["tied_with_best"]
    tied = tested.loc[verdicts.eq(True).fillna(False), "strategy"].tolist()
    worse = tested.loc[verdicts.eq(False).fillna(False), "strategy"].tolist()
    undecided = tested.loc[verdicts.isna(), "strategy"].tolist()
    untested = others.loc[others["p_vs_best"].isna(), "strategy"].tolist()
    parts = [f"{best} is best" if len(leaders) == 1 else head]
    if tied:
        parts.append(f"{listed(tied)} {_be(tied)} not significantly worse (p > {ALPHA})")
    if worse:
        parts.append(f"{listed(worse)} {_be(worse)} significantly worse (p <= {ALPHA})")
    if undecided:
        tie, their = ("ties", "its test") if len(undecided) == 1 else ("tie", "their tests")
        parts.append(
            f"whether {listed(undecided)} {tie} with {best} is undetermined ({their} could not reach "
            f"p <= {ALPHA})"
        )
    if untested:
        parts.append(f"{listed(untested)} could not be tested")
    return "; ".join(parts) + f" ({_tests_clause(ranking, best)})."


def _limit(ranking: Ranking) -> str:
    """What keeps every comparison from reaching p <= ALPHA: the sample sizes alone, or with ties."""
    comparison = ranking.comparison
    design = comparison["design_p"].dropna() if comparison is not None else pd.Series(dtype=float)
    return "with these sample sizes" if (design > ALPHA).all() else "with these sample sizes and ties"


def _tests_clause(ranking: Ranking, best: str) -> str:
    """E.g. "Holm-corrected Wilcoxon signed-rank tests against bottom"; with both tests, which
    strategies each compared."""
    if len(ranking.tests) == 1:
        return f"Holm-corrected {_TEST_NAMES[ranking.tests[0]]} tests against {best}"
    table = ranking.table
    uses = [
        f"{_TEST_NAMES[test]} for {listed(table.loc[table['test'] == test, 'strategy'].tolist())}"
        for test in ranking.tests
    ]
    return f"Holm-corrected tests against {best}: " + ", ".join(uses)


def power_sentence(ranking: Ranking) -> str:
    """How many blocks would detect the smallest gap to the best, for the test that compared that
    strategy with the best; "" when not estimable."""
    if ranking.all_tie:
        return "Power: all strategies tie (their means are equal): there is no gap to detect."
    power = ranking.power
    if power is None:
        return ""
    block, test = power.block_name, _TEST_NAMES[WILCOXON if power.paired else MANN_WHITNEY]
    if power.blocks_needed is None:
        over = f" over the {block}s they share" if power.paired else ""
        return f"Power: {power.strategy}'s mean equals {ranking.best}'s{over}: no gap to detect."
    others = ranking.table[(ranking.table["strategy"] != ranking.best) & (ranking.table["n"] > 0)]
    among = "" if power.comparisons == len(others) else " among the strategies tested against it"
    spread = (
        f"s.d. of the per-{block} differences {power.sd:.3g}, d_z = {power.effect:.3g}"
        if power.paired
        else f"pooled s.d. {power.sd:.3g}, d = {power.effect:.3g}"
    )
    method = f"the {test} test" + ("" if power.paired else f", which compared {power.strategy} unpaired")
    return (
        f"Power: the smallest gap to {ranking.best}{among} is {power.strategy}'s, {power.mean_gap:.3g} "
        f"({spread}); about {power.blocks_needed} {block}s per strategy would detect it with {POWER:.0%} "
        f"power at alpha = {ALPHA}, Holm-corrected over {power.comparisons} comparisons (normal "
        f"approximation for {method})."
    )


def _friedman_clause(ranking: Ranking) -> str:
    if np.isnan(ranking.friedman_p):
        return ""
    verdict = "the strategies differ" if ranking.friedman_p <= ALPHA else "no difference is detected"
    blocks = ranking.cells.dropna(axis=1, how="all").shape[1]
    shared = (
        f" over the {ranking.friedman_blocks} {ranking.block_name}s they all share,"
        if ranking.friedman_blocks < blocks
        else ""
    )
    return f" Across all strategies,{shared} the Friedman test gives p = {ranking.friedman_p:.3g}: {verdict}."


def _be(strategies: list[str]) -> str:
    return "is" if len(strategies) == 1 else "are"


def markdown_table(table: pd.DataFrame) -> str:
    """The ranking as a Markdown table with rounded numbers and the CI as one column."""
    shown = table.assign(ci=[_interval(row) for _, row in table.iterrows()])
    if "config" in shown and not shown["config"].astype(bool).any():
        shown = shown.drop(columns="config")  # only the search stage's best_config has one
    shown = shown.drop(columns=[c for c in _OPTIONAL if c in shown and shown[c].isna().all()])
    if "race_status" in shown and not shown["race_status"].fillna("").astype(bool).any():
        shown = shown.drop(columns=["race_status", "race_round", "race_threshold"])  # a raced stage's
    shown = shown[[column for column in _COLUMNS if column in shown]]
    lines = [
        "| " + " | ".join(_COLUMNS[column] for column in shown) + " |",
        "|" + "|".join("---" for _ in shown.columns) + "|",
    ]
    for _, row in shown.iterrows():
        lines.append("| " + " | ".join(_cell(row[column]) for column in shown) + " |")
    return "\n".join(lines)


def _interval(row: pd.Series) -> str:
    if pd.isna(row["ci_low"]):
        return ""
    return f"[{_cell(row['ci_low'])}, {_cell(row['ci_high'])}]"


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def write_report(
    path: Path, title: str, facts: Sequence[str], sections: Sequence[Section], notes: Sequence[str]
) -> None:
    """Writes the report; plots are linked relative to the report's folder."""
    lines = [f"# {title}", ""]
    lines += [f"- {fact}" for fact in facts] + [""]
    for section in sections:
        lines += [f"## {section.heading}", ""]
        for sentence in section.verdict:
            lines += [sentence, ""]
        lines += [markdown_table(section.ranking.table), ""]
        for plot in section.plots:
            lines += [f"![{plot.stem}]({os.path.relpath(plot, path.parent)})", ""]
        lines += [section.curves, ""] if section.curves else []
        lines += [f"- {note}" for note in section.ranking.notes] + [""]
    if notes:
        lines += ["## Notes on the trials", ""] + [f"- {note}" for note in notes] + [""]
    path.write_text("\n".join(lines))


def console_table(study: RankedStage) -> str:
    """The rankings as compact text for a terminal: per ranking a heading and one line per strategy
    (the significance sentence and the power estimate are in report.md)."""
    blocks = []
    for ranked in study.ranked:
        table = ranked.ranking.table
        flagged = "n_collapsed" in table and table["n_collapsed"].notna().any()
        rows = [_console_row(row, flagged) for _, row in table.iterrows()]
        baselines = table["baseline_score"].dropna().unique() if "baseline_score" in table else []
        against = f", baseline {', '.join(f'{b:.4f}' for b in baselines)}" if len(baselines) else ""
        columns = "rank, strategy, layers, mean ± CI95, tied" + (", collapsed" if flagged else "")
        lines = [f"{study.heading(ranked)} ({study.metric}{against}): {columns}"]
        lines += _aligned(rows)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _console_row(row: pd.Series, flagged: bool = False) -> list[str]:
    rank = "" if pd.isna(row["rank"]) else str(int(row["rank"]))
    layers = (
        row["teacher_layers"] if isinstance(row["teacher_layers"], str) and row["teacher_layers"] else "-"
    )
    mean = "-" if pd.isna(row["mean"]) else f"{row['mean']:.4f}"
    if not pd.isna(row["ci_low"]):
        mean += f" ± {(row['ci_high'] - row['ci_low']) / 2:.4f}"
    tied = row["tied_with_best"]
    if pd.isna(tied):  # no test ("-"), or one that could not have rejected
        verdict = "-" if pd.isna(row["p_vs_best"]) else "undecided"
    else:
        verdict = "yes" if tied else "no"
    if not flagged:
        return [rank, row["strategy"], layers, mean, verdict]
    collapsed = "" if pd.isna(row["n_collapsed"]) else f"{row['n_collapsed']}/{row['n']}"
    if collapsed and row["n"] > 0 and row["n_collapsed"] >= row["n"]:
        collapsed += " (learnt nothing)"
    return [rank, row["strategy"], layers, mean, verdict, collapsed]


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]

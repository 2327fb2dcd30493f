"""Reports of one or more rankings: in Markdown (a significance sentence, the power estimate, the
table, the plots) and as a compact table for the terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.power import POWER
from analysis.stats import ALPHA, MANN_WHITNEY, WILCOXON, Ranking

if TYPE_CHECKING:
    from analysis.rank import Study

_TEST_NAMES = {
    WILCOXON: "Holm-corrected Wilcoxon signed-rank tests",
    MANN_WHITNEY: "Holm-corrected Mann-Whitney U tests",
}
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
    "p_vs_best": "p vs best",
    "tied_with_best": "tied with best",
    "retention": "retention",
    "teacher_score": "teacher",
    "init_score": "init",
    "student_params": "student params",
    "n_excluded": "excluded",
}


@dataclass(frozen=True)
class Section:
    """One ranking in the report, under its heading, with its plots and what its learning curves
    did at the end (`analysis.curves.last_epoch_sentence`)."""

    heading: str
    ranking: Ranking
    plots: Sequence[Path] = field(default_factory=tuple)
    curves: str = ""


def significance_sentence(ranking: Ranking) -> str:
    """E.g. "bottom is best; top and odd are not significantly worse (p > 0.05); scratch is
    significantly worse (p <= 0.05) (Holm-corrected Wilcoxon signed-rank tests against bottom).
    Across all strategies, the Friedman test gives p = 0.001."
    """
    best = ranking.best
    if best is None:
        return "No strategy has a usable value, so nothing is ranked."
    return _against_best(ranking, best) + _friedman_clause(ranking)


def _against_best(ranking: Ranking, best: str) -> str:
    others = ranking.table[(ranking.table["strategy"] != best) & (ranking.table["n"] > 0)]
    tested = others[others["p_vs_best"].notna()]
    if tested.empty:
        return f"{best} has the best mean; whether it is significantly better is undefined here."
    if ranking.smallest_p > ALPHA:
        return (
            f"{best} has the best mean, but with these sample sizes no strategy can test as "
            f"significantly worse ({_TEST_NAMES[ranking.test]} against {best} cannot give p <= {ALPHA}; "
            f"the smallest attainable p is {ranking.smallest_p:.3g}), so whether the others tie with "
            f"{best} is undetermined."
        )
    verdicts = tested["tied_with_best"]
    tied = tested.loc[verdicts.eq(True).fillna(False), "strategy"].tolist()
    worse = tested.loc[verdicts.eq(False).fillna(False), "strategy"].tolist()
    undecided = tested.loc[verdicts.isna(), "strategy"].tolist()
    untested = others.loc[others["p_vs_best"].isna(), "strategy"].tolist()
    parts = [f"{best} is best"]
    if tied:
        parts.append(f"{_names(tied)} {_be(tied)} not significantly worse (p > {ALPHA})")
    if worse:
        parts.append(f"{_names(worse)} {_be(worse)} significantly worse (p <= {ALPHA})")
    if undecided:
        tie = "ties" if len(undecided) == 1 else "tie"
        parts.append(f"whether {_names(undecided)} {tie} with {best} is undetermined at these sample sizes")
    if untested:
        parts.append(f"{_names(untested)} could not be tested")
    return "; ".join(parts) + f" ({_TEST_NAMES[ranking.test]} against {best})."


def power_sentence(ranking: Ranking) -> str:
    """How many blocks would detect the smallest gap to the best; "" when not estimable."""
    power = ranking.power
    if power is None:
        return ""
    block = power.block_name
    if power.blocks_needed is None:
        return (
            f"Power: {power.strategy}'s mean equals {ranking.best}'s over their {block}s: no gap to detect."
        )
    return (
        f"Power: the smallest gap to {ranking.best} is {power.strategy}'s, {power.mean_gap:.3g} (s.d. of the "
        f"per-{block} differences {power.sd:.3g}, d_z = {power.d_z:.3g}); about {power.blocks_needed} "
        f"{block}s per strategy would detect it with {POWER:.0%} power at alpha = {ALPHA}, Holm-corrected "
        f"over {power.comparisons} comparisons (normal approximation for the Wilcoxon signed-rank test)."
    )


def _friedman_clause(ranking: Ranking) -> str:
    if np.isnan(ranking.friedman_p):
        return ""
    verdict = "the strategies differ" if ranking.friedman_p <= ALPHA else "no difference is detected"
    return f" Across all strategies, the Friedman test gives p = {ranking.friedman_p:.3g}: {verdict}."


def _names(strategies: list[str]) -> str:
    if len(strategies) == 1:
        return strategies[0]
    return ", ".join(strategies[:-1]) + " and " + strategies[-1]


def _be(strategies: list[str]) -> str:
    return "is" if len(strategies) == 1 else "are"


def markdown_table(table: pd.DataFrame) -> str:
    """The ranking as a Markdown table with rounded numbers and the CI as one column."""
    shown = table.assign(ci=[_interval(row) for _, row in table.iterrows()])
    if "config" in shown and not shown["config"].astype(bool).any():
        shown = shown.drop(columns="config")  # only the search stage's best_config has one
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
        lines += [f"## {section.heading}", "", significance_sentence(section.ranking), ""]
        power = power_sentence(section.ranking)
        lines += [power, ""] if power else []
        lines += [markdown_table(section.ranking.table), ""]
        for plot in section.plots:
            lines += [f"![{plot.stem}]({os.path.relpath(plot, path.parent)})", ""]
        lines += [section.curves, ""] if section.curves else []
        lines += [f"- {note}" for note in section.ranking.notes] + [""]
    if notes:
        lines += ["## Notes on the trials", ""] + [f"- {note}" for note in notes] + [""]
    path.write_text("\n".join(lines))


def console_table(study: Study) -> str:
    """The rankings as compact text for a terminal: per ranking a heading and one line per strategy
    (the significance sentence and the power estimate are in report.md)."""
    blocks = []
    for ranked in study.ranked:
        rows = [_console_row(row) for _, row in ranked.ranking.table.iterrows()]
        lines = [
            f"{study.heading(ranked)} ({study.metric}): rank, strategy, layers, mean ± 95% CI, tied with best"
        ]
        lines += _aligned(rows)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _console_row(row: pd.Series) -> list[str]:
    rank = "" if pd.isna(row["rank"]) else str(int(row["rank"]))
    layers = (
        row["teacher_layers"] if isinstance(row["teacher_layers"], str) and row["teacher_layers"] else "-"
    )
    mean = "-" if pd.isna(row["mean"]) else f"{row['mean']:.4f}"
    if not pd.isna(row["ci_low"]):
        mean += f" ± {(row['ci_high'] - row['ci_low']) / 2:.4f}"
    tied = row["tied_with_best"]
    return [rank, row["strategy"], layers, mean, "undecided" if pd.isna(tied) else "yes" if tied else "no"]


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]

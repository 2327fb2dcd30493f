"""PNG plots of a ranking, drawn with matplotlib's Agg canvas (no display, no global backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.curves import reports
from analysis.stats import Ranking
from trainables.metrics import EVAL_ACCURACY
from trainables.vocabulary import STRATEGY

_JITTER = 0.08


def plot_metric(ranking: Ranking, metric: str, path: Path, title: str = "") -> None:
    """Every seed as a point, with each strategy's mean and 95% CI, best strategy leftmost."""
    table = ranking.table[ranking.table["n"] > 0]
    figure = Figure(figsize=(max(5.5, 1.1 * len(table) + 1.5), 4.0), layout="constrained")
    axes = figure.add_subplot()
    for x, row in enumerate(table.itertuples()):
        values = ranking.cells.loc[row.strategy].dropna().to_numpy()
        offsets = np.linspace(-_JITTER, _JITTER, len(values)) if len(values) > 1 else [0.0]
        axes.scatter(x + np.asarray(offsets), values, s=14, color="0.55", zorder=2)
        axes.errorbar(
            x,
            row.mean,
            yerr=_error_bar(row.mean, row.ci_low, row.ci_high),
            fmt="D",
            color="C0",
            capsize=5,
            zorder=3,
        )
    axes.set_xticks(range(len(table)), table["strategy"], rotation=30, ha="right")
    axes.set_ylabel(metric)
    axes.set_title(title or f"{metric}: seeds (grey), mean and 95% bootstrap CI (blue)")
    axes.grid(axis="y", alpha=0.3)
    _save(figure, path)


def _error_bar(mean: float, low: float, high: float) -> list[list[float]] | None:
    """The CI as bar lengths below and above the mean; None without a CI. The lengths are
    clipped at 0: a constant strategy's CI equals its values, and their mean may differ from
    them in the last bit."""
    if np.isnan(low):
        return None
    return [[max(mean - low, 0.0)], [max(high - mean, 0.0)]]


def plot_history(
    history: pd.DataFrame,
    trials: pd.DataFrame,
    order: Sequence[str],
    path: Path,
    metric: str = EVAL_ACCURACY,
) -> bool:
    """The metric per epoch, mean over each strategy's trials with a +-1 s.d. band.

    `trials` maps trial_id to strategy. Returns False (and draws nothing) when there is no
    per-epoch history of the metric, e.g. for a per-trial CSV.
    """
    if history.empty or metric not in history:
        return False
    curves, clock = _curves(history, trials, metric)
    if curves.empty:
        return False
    figure = Figure(figsize=(6.5, 4.0), layout="constrained")
    axes = figure.add_subplot()
    for strategy in [s for s in order if s in curves.index.get_level_values(STRATEGY)]:
        curve = curves.loc[strategy]
        band = curve["std"].fillna(0.0)
        axes.plot(curve.index, curve["mean"], marker="o", markersize=3, label=strategy)
        axes.fill_between(curve.index, curve["mean"] - band, curve["mean"] + band, alpha=0.15)
    axes.set_xlabel(clock)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per {clock}: mean over seeds, band +-1 s.d.")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="best")
    _save(figure, path)
    return True


def _curves(history: pd.DataFrame, trials: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """Mean and s.d. of the metric per strategy and epoch (else per training iteration)."""
    rows, clock = reports(history, trials, metric)
    return rows.groupby([STRATEGY, clock])[metric].agg(["mean", "std"]), clock


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120)


def plot_layer_scores(choices: dict[str, dict], path: Path) -> bool:
    """Each data-driven strategy's score of every teacher layer (e.g. Block Influence, or the teacher's
    loss without that layer), the layers it kept in colour. `choices` maps a strategy to its
    teacher-stage record (`layers` kept, `scores` by layer, `score_name` what a score is). Returns False
    (and draws nothing) when none has scores."""
    scored = {strategy: chosen for strategy, chosen in choices.items() if chosen.get("scores")}
    if not scored:
        return False
    figure = Figure(figsize=(6.5, 2.6 * len(scored)), layout="constrained")
    for row, (strategy, chosen) in enumerate(scored.items()):
        axes = figure.add_subplot(len(scored), 1, row + 1)
        layers = sorted(int(layer) for layer in chosen["scores"])
        values = [
            chosen["scores"][str(layer) if str(layer) in chosen["scores"] else layer] for layer in layers
        ]
        colours = ["C0" if layer in chosen["layers"] else "0.75" for layer in layers]
        axes.bar(layers, values, color=colours)
        axes.set_xticks(layers)
        axes.set_xlabel("teacher layer (1 = nearest the embeddings)")
        what = chosen.get("score_name", "score")
        axes.set_ylabel(what)
        axes.set_title(f"{strategy}: keeps {', '.join(map(str, chosen['layers']))} (blue)")
        axes.grid(axis="y", alpha=0.3)
    _save(figure, path)
    return True

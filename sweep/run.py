"""`python -m sweep.run`: a Ray Tune study of student-layer initialisations for distillation.

    python -m sweep.run --preset smoke                 # offline check of an install, a few minutes
    python -m sweep.run --gpus 4 --gpus-per-trial 0.25 # the `seed` study, four trials per GPU
    python -m sweep.run --config my.yaml --dry-run     # list the planned trials, start nothing
    python -m sweep.run --preset smoke --resume        # continue an interrupted study

Settings come from a preset, then a YAML file, then flags. Any bad setting exits with status 2 and
a message before Ray starts; an interrupted study exits with 130 and continues with --resume.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from sweep.config import StudyConfig, load_yaml, resolve
from sweep.presets import PRESETS, merge
from sweep.study_dir import claimed, refuse_existing, same_study, stored_study
from trainables.errors import ConfigError
from trainables.layers import STRATEGY_HELP

# Data sources a flag can set (a selection source equal to the training source holds rows out of it).
SPLITS = ("train", "validation", "test", "selection")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would exit; report it like any other bad input
        raise ConfigError(f"{message}. See python -m sweep.run --help.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m sweep.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    study = parser.add_argument_group("study")
    study.add_argument("--preset", help=f"base settings: {', '.join(PRESETS)} (default seed)")
    study.add_argument("--config", help="YAML file with any settings (see configs/); flags override it")
    study.add_argument("--name", help="study name (default: the preset's name)")
    study.add_argument("--storage-path", help="folder or URI Ray's storage accepts (default: ./runs)")
    study.add_argument(
        "--stage", choices=("search", "replicate", "both"), help="stages to run (default both)"
    )
    study.add_argument("--strategies", nargs="+", help=f"layer strategies: {STRATEGY_HELP}")
    study.add_argument(
        "--num-samples", type=int, help="search trials per strategy (in all, for search.mode joint)"
    )
    study.add_argument(
        "--seeds",
        type=_seeds,
        help="seeds per strategy in the replicate stage: a count N (seeds 0..N-1) or a list such as 5,6,7 "
        "(one seed: 5,)",
    )
    study.add_argument(
        "--resume", nargs="?", const=True, metavar="STUDY_DIR", help="continue an interrupted study"
    )
    study.add_argument("--max-failures", type=int, help="retries of a failed trial from its last checkpoint")
    study.add_argument("--keep-checkpoints", type=int, help="checkpoints kept per trial (default 1)")
    model = parser.add_argument_group("teacher, student and data")
    model.add_argument("--teacher", help="base model to fine-tune, or a fine-tuned classifier to load")
    model.add_argument("--student-layers", type=int, help="K, the student's number of layers")
    model.add_argument("--epochs", type=int, help="epochs per trial")
    model.add_argument("--task", help="GLUE task, e.g. mnli, sst2")
    for split in SPLITS:
        model.add_argument(f"--{split}", help=f"{split} source: a hub split name or a .jsonl/.csv file")
        model.add_argument(f"--{split}-size", type=int, help=f"random subset of the {split} source")
    res = parser.add_argument_group("resources")
    res.add_argument("--address", help="join a running Ray cluster (started with `ray start --head`)")
    res.add_argument("--cpus", type=float, help="CPUs of the local Ray instance (default: all)")
    res.add_argument("--gpus", type=float, help="GPUs of the local Ray instance (default: all)")
    res.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default 1)")
    res.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; 0.25 puts four trials on a GPU")
    res.add_argument("--max-concurrent-trials", type=int, help="cap on trials running at once")
    out = parser.add_argument_group("output")
    out.add_argument("--dry-run", action="store_true", help="print the planned trials and exit")
    out.add_argument("--format", choices=("text", "json"), default="text", help="--dry-run output format")
    out.add_argument("--verbose", action="store_true", help="show Ray's own console output and logs")
    return parser


def flags_to_settings(args: argparse.Namespace) -> dict:
    """The explicitly given flags as a nested settings dict, in the YAML's shape."""
    direct = {
        "preset": args.preset,
        "name": args.name,
        "storage_path": args.storage_path,
        "strategies": _strategies(args.strategies) if args.strategies else None,
        "max_failures": args.max_failures,
        "keep_checkpoints": args.keep_checkpoints,
        "stages": (["search", "replicate"] if args.stage == "both" else [args.stage]) if args.stage else None,
    }
    nested = {
        "search": {"num_samples": args.num_samples},
        "replicate": {"seeds": args.seeds},
        "teacher": {"base": args.teacher},
        "trial": {"student_layers": args.student_layers, "epochs": args.epochs},
        "data": {
            "task": args.task,
            **{split: getattr(args, split) for split in SPLITS},
            **{f"{split}_size": getattr(args, f"{split}_size") for split in SPLITS},
        },
        "resources": {
            key: getattr(args, key)
            for key in (
                "address",
                "cpus",
                "gpus",
                "cpus_per_trial",
                "gpus_per_trial",
                "max_concurrent_trials",
            )
        },
    }
    settings = {k: v for k, v in direct.items() if v is not None}
    for section, values in nested.items():
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            settings[section] = given
    return settings


def _seeds(text: str) -> int | list[int]:
    """A count ("5") or a comma-separated list of seeds ("5,6,7")."""
    try:
        return [int(part) for part in text.split(",") if part] if "," in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid seeds {text!r}: give a count (5) or a comma-separated list of seeds "
            "(5,6,7; one seed: 5,)"
        ) from None


def _strategies(items: list[str]) -> list[str]:
    """Split "bottom,top" and keep "custom:1,5,9" whole: a bare number continues a custom list."""
    strategies: list[str] = []
    for part in ",".join(items).split(","):
        part = part.strip()
        if part.isdigit() and strategies and strategies[-1].startswith("custom:"):
            strategies[-1] += f",{part}"
        elif part:
            strategies.append(part)
    return strategies


def study_config(args: argparse.Namespace) -> tuple[StudyConfig, bool]:
    """The study to run and whether it resumes one; refuses to resume with other settings."""
    yaml_values = load_yaml(args.config) if args.config else {}
    flags = flags_to_settings(args)
    requested = resolve(yaml_values, flags)
    if not args.resume:
        return requested, False
    folder = Path(args.resume).expanduser().resolve() if isinstance(args.resume, str) else requested.local_dir
    stored = stored_study(folder)
    same_study(stored, requested, merge(yaml_values, flags))
    if "max_failures" in flags:
        stored.max_failures = requested.max_failures
    for key in flags.get("resources", {}):
        setattr(stored.resources, key, getattr(requested.resources, key))
    return stored, True


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config, resumed = study_config(args)
        if args.dry_run:
            return dry_run(config, args.format)
        with claimed(config.local_dir):
            if not resumed:
                refuse_existing(config)
            return run(config, resumed, args.verbose)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted. Continue with --resume.", file=sys.stderr)
        return 130


def quiet_libraries() -> None:
    """No progress bars from the libraries in this process: the console shows the study's own."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def dry_run(config: StudyConfig, output: str = "text") -> int:
    """Check everything and print the plan; writes nothing (a smoke study's tiny world goes to a
    temporary folder)."""
    from sweep import plan
    from sweep.checks import check_study, local_caches, prepare_tiny

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="kd-dry-run-") as scratch, local_caches(config, Path(scratch)):
        prepare_tiny(config, Path(scratch) / "tiny")
        checked = check_study(config)
        planned = plan.planned_trials(config, checked)
        print(plan.format_json(planned) if output == "json" else plan.format_text(config, checked, planned))
    return 0


def run(config: StudyConfig, resumed: bool, verbose: bool = False) -> int:
    """Check everything, then run the study."""
    from sweep import plan, stages
    from sweep.checks import check_study, local_caches, prepare_tiny

    if not verbose:
        quiet_libraries()
    with local_caches(config):
        prepare_tiny(config)
        checked = check_study(config)
        print("\n".join(plan.summary(config, checked)), flush=True)
        if not resumed:
            stages.write_study_file(config)
        return stages.run_study(config, checked, verbose)


if __name__ == "__main__":
    sys.exit(main())

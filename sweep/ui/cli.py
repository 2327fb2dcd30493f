"""`python -m sweep.run`: a Ray Tune study of student-layer initialisations for distillation.

    python -m sweep.run --preset smoke                 # offline check of an install, a few minutes
    python -m sweep.run --gpus 4 --gpus-per-trial 0.25 # the `original` study, four trials per GPU
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

import datasets
import transformers

from sweep.config.flags import build_parser, flags_to_settings
from sweep.config.stored import refuse_existing, same_study, stored_study, write_study_file
from sweep.config.study import StudyConfig, load_yaml, merge, resolve
from sweep.plan.plan import StudyPlan, plan_json, plan_study
from sweep.preflight.checks import check_study
from sweep.preflight.offline import local_caches
from sweep.preflight.smoke_world import prepare_tiny
from sweep.stages.lock import claimed
from sweep.stages.study import INTERRUPTED, run_study
from sweep.stages.teacher import known_record
from sweep.ui.console import shown_messages
from sweep.ui.plan_text import plan_text, summary
from trainables.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (2 for bad input, 130 when interrupted)."""
    try:
        args = build_parser(__doc__).parse_args(argv)
        config, resumed = study_config(args)
        if args.dry_run:
            return dry_run(config, args.format)
        with claimed(config.layout):
            if not resumed:
                refuse_existing(config)
            return run(config, resumed, args.verbose)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted. Continue with --resume.", file=sys.stderr)
        return INTERRUPTED


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


def quiet_libraries() -> None:
    """No progress bars from the libraries in this process: the console shows the study's own."""
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def checked_plan(config: StudyConfig) -> StudyPlan:
    """Every check, then the plan (with the teacher record, where one is known already)."""
    preflight = check_study(config)
    return plan_study(config, preflight, known_record(config, preflight))


def dry_run(config: StudyConfig, output: str = "text") -> int:
    """Check everything and print the plan; writes nothing (a smoke study's tiny world goes to a
    temporary folder)."""
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="kd-dry-run-") as scratch, local_caches(config, Path(scratch)):
        prepare_tiny(config, Path(scratch) / "tiny")
        plan = checked_plan(config)
        print(plan_json(plan) if output == "json" else plan_text(plan))
    return 0


def run(config: StudyConfig, resumed: bool, verbose: bool = False) -> int:
    """Check everything, then run the study."""
    if not verbose:
        quiet_libraries()
    with local_caches(config), shown_messages():
        prepare_tiny(config)
        plan = checked_plan(config)
        print("\n".join(summary(plan)), flush=True)
        if not resumed:
            write_study_file(config)
        return run_study(plan, verbose)

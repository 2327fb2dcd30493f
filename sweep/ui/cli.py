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
import errno
import shutil
import sys
import tempfile
from pathlib import Path

import datasets
import transformers

from sweep.config.flags import build_parser, flags_to_settings
from sweep.config.stored import keep_budgets, resumed_with, same_study, stored_study, write_study_file
from sweep.config.study import StudyConfig, load_yaml, merge, resolve
from sweep.plan.plan import StudyPlan, plan_json, plan_study
from sweep.preflight.checks import check_study
from sweep.preflight.folder import check_folder
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
            return dry_run(config, resumed, args.format)
        return run(config, resumed, args.verbose)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno != errno.ENAMETOOLONG:
            raise
        name = str(error.filename or "")
        print(
            f"error: the path {name[:80]}{'...' if len(name) > 80 else ''} is too long for the file system "
            f"({error.strerror}); give a shorter one.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("Interrupted. Continue with --resume.", file=sys.stderr)
        return INTERRUPTED


def study_config(args: argparse.Namespace) -> tuple[StudyConfig, bool]:
    """The study to run and whether it resumes one; refuses to resume with other settings. A resumed
    study is the one in the folder given, wherever it was started."""
    yaml_values = load_yaml(args.config) if args.config is not None else {}
    flags = flags_to_settings(args)
    requested = resolve(yaml_values, flags)
    if args.resume is None:
        return requested, False
    if isinstance(args.resume, str) and not args.resume.strip():
        raise ConfigError(
            "--resume '' names no folder: give the study's folder, or no value to resume "
            "the study of --name/--storage-path."
        )
    folder = Path(args.resume).expanduser().resolve() if isinstance(args.resume, str) else requested.local_dir
    stored = stored_study(folder)
    explicit = merge(yaml_values, flags)
    same_study(stored, requested, explicit)
    return resumed_with(stored, requested, explicit), True


def quiet_libraries() -> None:
    """No progress bars from the libraries in this process: the console shows the study's own."""
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def checked_plan(config: StudyConfig, resumed: bool = False) -> StudyPlan:
    """Every check a study passes before it starts, the same for the dry run and the run: the study
    folder, the settings, model and data (with the cluster, when joining one), then the plan and its
    disk check (with the teacher record, where one is known already)."""
    check_folder(config, resumed)
    preflight = check_study(config)
    return plan_study(config, preflight, known_record(config, preflight), resumed)


def dry_run(config: StudyConfig, resumed: bool = False, output: str = "text") -> int:
    """Check everything and print the plan; writes nothing (a smoke study's tiny world goes to a
    temporary folder)."""
    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="kd-dry-run-") as scratch, local_caches(config, Path(scratch)):
        prepare_tiny(config, Path(scratch) / "tiny")
        plan = checked_plan(config, resumed)
        print(plan_json(plan) if output == "json" else plan_text(plan))
    return 0


def run(config: StudyConfig, resumed: bool, verbose: bool = False) -> int:
    """Check everything, then run the study. A new study refused by a check leaves no folder behind."""
    if not verbose:
        quiet_libraries()
    check_folder(config, resumed)
    created = _first_missing(config.local_dir)
    with claimed(config.layout):
        try:
            with local_caches(config), shown_messages():
                prepare_tiny(config)
                plan = checked_plan(config, resumed)
                print("\n".join(summary(plan)), flush=True)
                if resumed:
                    keep_budgets(config)
                else:
                    write_study_file(config)
                return run_study(plan, verbose)
        except ConfigError:
            if created and not config.layout.study_file.exists():
                shutil.rmtree(created, ignore_errors=True)
            raise


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its ancestors that does not exist yet (what making it creates)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            return missing
        missing = path
    return missing

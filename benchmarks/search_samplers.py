"""`python -m benchmarks.search_samplers --out search_samplers.json`: does TPE find better settings than
random search at the study's budget?

On a small real study (SST-2, the pretrained MiniLM-L6 fine-tuned as the teacher, 3-layer `odd`
students, 1000 training rows with 200 more held out for selection, 2 epochs) it runs the search stage
of `python -m sweep.run` with each sampler (`search.sampler: tpe` and `random`) over several sampler
seeds, with the same budget (`search.num_samples`), space and ASHA settings, and reports the best
full-budget selection score each search found, and that trial's validation accuracy (rows the search
never selected on). Both samplers start from the fixed setting; TPE then samples the start-up trials
(a third of the budget, rounded up) at random before modelling the results. Each study runs one trial
at a time (`--cpus`), so that ASHA's decisions do not depend on which of two trials ends first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from analysis.results import load_results
from analysis.values import full_budget, trial_values
from sweep.config.stored import write_study_file
from sweep.config.study import StudyConfig, resolve
from sweep.plan.plan import fixed_values, plan_study
from sweep.preflight.checks import check_study
from sweep.stages.study import run_study
from sweep.stages.teacher import known_record
from trainables.vocabulary import Stage

REPO = Path(__file__).resolve().parents[1]
SAMPLERS = ("tpe", "random")


def study(
    name: str, storage: Path, data_dir: Path, teacher: str, sampler: str, seed: int, samples: int, cpus: int
) -> StudyConfig:
    """One search-only study of `odd` on SST-2 with `sampler` at `seed`."""
    sst2 = data_dir / "sst2"
    return resolve(
        flags={
            "name": name,
            "storage_path": str(storage),
            "stages": ["search"],
            "strategies": ["odd"],
            "teacher": {"base": teacher, "epochs": 2, "lr": 1e-4, "train_size": 2000},
            "data": {
                "task": "sst2",
                "train": str(sst2 / "train.jsonl"),
                "selection": str(sst2 / "train.jsonl"),
                "selection_size": 200,
                "validation": str(sst2 / "validation.jsonl"),
                "train_size": 1000,
                "validation_size": None,
                "test_size": None,
                "test": None,
            },
            "trial": {"student_layers": 3, "epochs": 2, "lr": 1e-4, "eval_every": 2},
            "search": {"num_samples": samples, "sampler": sampler, "sampler_seed": seed},
            "resources": {"cpus": cpus},
        }
    )


def run_search(config: StudyConfig) -> dict:
    """Run the study, unless its folder already holds a finished search (then only read it)."""
    if config.layout.best_hyperparameters.is_file():
        return {"exit_status": None, "wall_s": None, **search_result(config)}
    preflight = check_study(config)
    plan = plan_study(config, preflight, known_record(config, preflight))
    write_study_file(config)
    started = time.perf_counter()
    status = run_study(plan)
    wall = round(time.perf_counter() - started, 1)
    return {"exit_status": status, "wall_s": wall, **search_result(config)}


def search_result(config: StudyConfig) -> dict:
    """A finished search's best full-budget trial (its selection score, its validation accuracy and
    its setting), what the sampled trials (all but the fixed setting's) reached (how many ran the
    full budget, and the best selection score among them), and every trial's setting."""
    best = json.loads(config.layout.best_hyperparameters.read_text())["odd"]
    trial_id, score = best["from"].removeprefix("trial ").rsplit(": ", 1)
    results = load_results(config.layout.stage_dir(Stage.SEARCH))
    validation = trial_values(results, "eval_accuracy").set_index("trial_id")
    selection, _ = full_budget(trial_values(results, config.search_metric))
    fixed = fixed_values(config)
    is_fixed = (selection[[f"config/{name}" for name in fixed]] == list(fixed.values())).all(axis=1)
    sampled = selection[~is_fixed & (selection["excluded"] == "")]
    return {
        "trials": len(selection),
        "failed": int((selection["status"] == "ERROR").sum()),
        "best_trial": trial_id,
        "best_is_the_fixed_setting": bool(is_fixed[selection["trial_id"] == trial_id].all()),
        "best_selection_accuracy": float(score),
        "its_validation_accuracy": round(float(validation.at[trial_id, "value"]), 4),
        "best_setting": best["hyperparameters"],
        "sampled_full_budget": len(sampled),
        "best_sampled_selection_accuracy": float(sampled["value"].max()) if len(sampled) else None,
        "settings_in_order": [  # each trial's setting (temperature, ce, kd, cos, lr), in creation order
            [float(f"{value:.6g}") for value in row]
            for row in selection[[f"config/{name}" for name in fixed]].itertuples(index=False)
        ],
    }


def compare(data_dir: Path, teacher: str, storage: Path, seeds: int, samples: int, cpus: int) -> dict:
    """Both samplers over `seeds` sampler seeds, each a study in `storage`; the first study fine-tunes
    the teacher, the others load it."""
    runs: dict[str, list[dict]] = {sampler: [] for sampler in SAMPLERS}
    base = teacher
    for seed in range(seeds):
        for sampler in SAMPLERS:
            config = study(f"{sampler}-{seed}", storage, data_dir, base, sampler, seed, samples, cpus)
            runs[sampler].append({"sampler_seed": seed, **run_search(config)})
            print(f"{sampler} seed {seed}: {runs[sampler][-1]}", file=sys.stderr, flush=True)
            base = str(storage / "tpe-0" / "teacher" / "model")
    summary = {}
    for key in (
        "best_selection_accuracy",
        "its_validation_accuracy",
        "sampled_full_budget",
        "best_sampled_selection_accuracy",
    ):
        best = {sampler: [run[key] for run in runs[sampler]] for sampler in SAMPLERS}
        summary[key] = {
            "mean": {sampler: round(statistics.mean(values), 4) for sampler, values in best.items()},
            "tpe_minus_random": [round(t - r, 4) for t, r in zip(best["tpe"], best["random"], strict=True)],
        }
    return {"budget": samples, "sampler_seeds": seeds, "cpus": cpus, "runs": runs, **summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search_samplers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--teacher", required=True, help="the base model to fine-tune (e.g. MiniLM-L6's folder)"
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "benchmark")
    parser.add_argument(
        "--storage",
        type=Path,
        help="the folder of an earlier run: its finished studies are read, the others run (default: a "
        "new folder in --work-dir)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds per sampler")
    parser.add_argument("--samples", type=int, default=8, help="search trials per study (the default budget)")
    parser.add_argument("--cpus", type=int, default=1, help="CPUs each study's Ray uses (trials at once)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    storage = args.storage or args.work_dir / f"samplers-{time.strftime('%Y%m%d-%H%M%S')}"
    result = compare(args.data_dir, args.teacher, storage, args.seeds, args.samples, args.cpus)
    args.out.write_text(json.dumps(result, indent=2))
    means = {
        key: value["mean"] for key, value in result.items() if isinstance(value, dict) and "mean" in value
    }
    print(json.dumps(means))
    return 0


if __name__ == "__main__":
    sys.exit(main())

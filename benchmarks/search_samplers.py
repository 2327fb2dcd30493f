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
from analysis.values import trial_values
from sweep.config.stored import write_study_file
from sweep.config.study import StudyConfig, resolve
from sweep.plan.plan import plan_study
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
    """Run the study; return the best full-budget search trial's selection score, its validation
    accuracy and its setting."""
    preflight = check_study(config)
    plan = plan_study(config, preflight, known_record(config, preflight))
    write_study_file(config)
    started = time.perf_counter()
    status = run_study(plan)
    best = json.loads(config.layout.best_hyperparameters.read_text())["odd"]
    trial_id, score = best["from"].removeprefix("trial ").rsplit(": ", 1)
    validation = trial_values(load_results(config.layout.stage_dir(Stage.SEARCH)), "eval_accuracy")
    return {
        "exit_status": status,
        "trials": len(validation),
        "best_trial": trial_id,
        "best_selection_accuracy": float(score),
        "its_validation_accuracy": round(float(validation.set_index("trial_id").at[trial_id, "value"]), 4),
        "best_setting": best["hyperparameters"],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def compare(data_dir: Path, teacher: str, work_dir: Path, seeds: int, samples: int, cpus: int) -> dict:
    """Both samplers over `seeds` sampler seeds; the first study fine-tunes the teacher, the others
    load it."""
    storage = work_dir / f"samplers-{time.strftime('%Y%m%d-%H%M%S')}"
    runs: dict[str, list[dict]] = {sampler: [] for sampler in SAMPLERS}
    base = teacher
    for seed in range(seeds):
        for sampler in SAMPLERS:
            config = study(f"{sampler}-{seed}", storage, data_dir, base, sampler, seed, samples, cpus)
            runs[sampler].append({"sampler_seed": seed, **run_search(config)})
            print(f"{sampler} seed {seed}: {runs[sampler][-1]}", file=sys.stderr, flush=True)
            base = str(storage / "tpe-0" / "teacher" / "model")
    summary = {}
    for key in ("best_selection_accuracy", "its_validation_accuracy"):
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
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds per sampler")
    parser.add_argument("--samples", type=int, default=8, help="search trials per study (the default budget)")
    parser.add_argument("--cpus", type=int, default=1, help="CPUs each study's Ray uses (trials at once)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = compare(args.data_dir, args.teacher, args.work_dir, args.seeds, args.samples, args.cpus)
    args.out.write_text(json.dumps(result, indent=2))
    means = {key: result[key]["mean"] for key in ("best_selection_accuracy", "its_validation_accuracy")}
    print(json.dumps(means))
    return 0


if __name__ == "__main__":
    sys.exit(main())

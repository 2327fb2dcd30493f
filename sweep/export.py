"""The study's deliverables beside the ranking: the best student, and how fast it is.

The best replicate trial's last checkpoint becomes a Hugging Face model folder that loads with
`AutoModelForSequenceClassification`. Its speed is measured against the teacher on the same
batches of validation examples, on this machine's best device.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from trainables import loop
from trainables.data import load_rows, subset, tokenize
from trainables.layers import select_layers
from trainables.reporting import STATE_FILE
from trainables.student import build_student
from trainables.teacher import load_teacher

BEST_STUDENT = "best_student"
STUDENT_INFO = "student.json"
SPEED_JSON = "speed.json"


def export_student(trial, teacher_path: str, out_dir: Path, metric: str) -> dict:
    """Rebuild the trial's student from its last checkpoint and save it with the teacher's tokenizer."""
    config = trial.config
    teacher, tokenizer, _ = load_teacher(teacher_path, config["data"]["task"], config["trust_remote_code"])
    layers = select_layers(config["strategy"], teacher.config.num_hidden_layers, config["student_layers"])
    student = build_student(teacher, layers, num_layers=config["student_layers"])
    with trial.checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=False)
    student.load_state_dict(state["student"])
    out_dir.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "trial_id": trial.trial_id,
        "strategy": config["strategy"],
        "teacher_layers": layers,
        "seed": config["seed"],
        metric: trial.last_result.get(metric),
        "test_accuracy": trial.last_result.get("test_accuracy"),
        "teacher": teacher_path,
        "hyperparameters": {k: config[k] for k in ("temperature", "alpha_ce", "alpha_kd", "alpha_cos", "lr")},
    }
    (out_dir / STUDENT_INFO).write_text(json.dumps(info, indent=2))
    which = f"trial {trial.trial_id} ({config['strategy']}, seed {config['seed']})"
    print(f"Best student: {which} saved to {out_dir}")
    return info


def measure_speed(teacher_path: str, student_path: Path, data: dict, batch_size: int, batches: int) -> dict:
    """Examples per second of teacher and student on the same validation batches, and the speed-up."""
    from transformers import AutoModelForSequenceClassification

    teacher, tokenizer, _ = load_teacher(teacher_path, data["task"])
    student = AutoModelForSequenceClassification.from_pretrained(student_path).eval()
    device = loop.pick_device("auto")
    rows = subset(load_rows(data["task"], data["validation"]), batch_size * batches, data["data_seed"])
    rows = tokenize(rows, data["task"], tokenizer, data["max_length"])
    fixed = [loop.to_device(b, device) for b in loop.make_loader(rows, tokenizer, batch_size, device)]
    examples = sum(len(b["labels"]) for b in fixed)
    result = {"device": str(device), "batch_size": batch_size, "batches": len(fixed), "examples": examples}
    for name, model in (("teacher", teacher), ("student", student)):
        model.to(device)
        result[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "layers": model.config.num_hidden_layers,
            "examples_per_second": examples / _fastest_pass(model, fixed, device),
        }
        model.cpu()
    result["speedup"] = result["student"]["examples_per_second"] / result["teacher"]["examples_per_second"]
    return result


@torch.inference_mode()
def _fastest_pass(
    model: torch.nn.Module, batches: list[dict], device: torch.device, passes: int = 3
) -> float:
    """Seconds for the fastest of a few passes over the batches, after one warm-up batch."""
    model.eval()
    with loop.autocast(device):
        model(**loop.model_inputs(batches[0]))
        times = []
        for _ in range(passes):
            _sync(device)
            started = time.perf_counter()
            for batch in batches:
                model(**loop.model_inputs(batch))
            _sync(device)
            times.append(time.perf_counter() - started)
    return min(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_speed(speed: dict, study_dir: Path) -> Path:
    path = study_dir / SPEED_JSON
    path.write_text(json.dumps(speed, indent=2))
    teacher, student = speed["teacher"], speed["student"]
    print(
        f"Inference on {speed['device']} ({speed['examples']} examples, batch {speed['batch_size']}): "
        f"teacher {teacher['examples_per_second']:.1f} examples/s ({teacher['parameters']:,} parameters), "
        f"student {student['examples_per_second']:.1f} examples/s ({student['parameters']:,} parameters): "
        f"speed-up {speed['speedup']:.2f}x. Written to {path}."
    )
    return path

"""The study's deliverables beside the ranking: the best student, and how fast it is.

The best seed of the top-ranked strategy becomes a Hugging Face model folder that loads with
`AutoModelForSequenceClassification`; its teacher layers are read from the trial's checkpoint. Its
speed is measured against the teacher on the same batches of validation examples, on this
machine's best device.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from trainables import loop, vocabulary
from trainables.architectures import adapter_for
from trainables.data import DataConfig, load_split
from trainables.reporting import load_state
from trainables.student import build_student
from trainables.teacher import load_teacher
from trainables.vocabulary import SEARCHED

STUDENT_INFO = "student.json"


def export_student(trial, teacher_path: str, out_dir: Path, metric: str, which: str) -> dict:
    """Rebuild the trial's student from its last checkpoint and save it with the teacher's tokenizer.

    `which` says why this trial was chosen, for the console and `student.json`."""
    config = trial.config
    teacher, tokenizer, _ = load_teacher(teacher_path, config["data"]["task"], config["trust_remote_code"])
    with trial.checkpoint.as_directory() as directory:
        state = load_state(Path(directory))
    text = state["constants"][vocabulary.TEACHER_LAYERS]
    layers = [int(layer) for layer in text.split(",")] if text else []
    student = build_student(teacher, layers, num_layers=config["student_layers"])
    student.load_state_dict(state["student"])
    out_dir.mkdir(parents=True, exist_ok=True)
    student.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "chosen_as": which,
        "trial_id": trial.trial_id,
        "strategy": config["strategy"],
        "teacher_layers": layers,
        "seed": config["seed"],
        metric: trial.last_result.get(metric),
        "teacher": teacher_path,
        "teacher_hash": state["constants"].get(vocabulary.TEACHER_HASH),
        "hyperparameters": {k: config[k] for k in SEARCHED},
    }
    note = adapter_for(teacher.config).export_note(layers)
    if note:  # the folder holds the trained student, but stock code would load another model
        info["does_not_load_back_as_itself"] = note
    (out_dir / STUDENT_INFO).write_text(json.dumps(info, indent=2))
    return info


def measure_speed(
    teacher_path: str, student_path: Path, data: DataConfig, batch_size: int, batches: int
) -> dict:
    """Examples per second of teacher and student on the same validation batches, and the speed-up."""
    teacher, tokenizer, _ = load_teacher(teacher_path, data.task)
    student = AutoModelForSequenceClassification.from_pretrained(student_path).eval()
    device = loop.pick_device("auto")
    rows = load_split(data, data.validation, batch_size * batches, tokenizer)
    fixed = [loop.to_device(b, device) for b in loop.make_loader(rows, tokenizer, batch_size, device)]
    examples = sum(len(b["labels"]) for b in fixed)
    info = (
        json.loads((student_path / STUDENT_INFO).read_text())
        if (student_path / STUDENT_INFO).is_file()
        else {}
    )
    result = {
        "device": str(device),
        "student_is": info.get("chosen_as"),
        "batch_size": batch_size,
        "batches": len(fixed),
        "examples": examples,
    }
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
    with loop.autocast(device, loop.autocast_dtype("auto", device)):
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

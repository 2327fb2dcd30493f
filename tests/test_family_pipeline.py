"""Every stage of a trial for an encoder other than BERT (ModernBERT) and a decoder (Llama).

Each family's tiny base model is fine-tuned on the tiny task once for the module; each test then
checks one stage against a computation by hand: the teacher, its padding, the cached outputs, the
student, one distillation step term by term, `auto:bi` and `auto:drop` on a teacher whose answer is
known, evaluation, and the exported student.
"""

from __future__ import annotations

import copy
import json
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from sweep.stages.export import STUDENT_INFO, export_student, measure_speed
from tests.families import skipping
from trainables import loop, metrics, vocabulary
from trainables.config import TrialConfig
from trainables.data import DataConfig, load_task_data, task_spec
from trainables.distill import prepare, run_trial, step_loss
from trainables.reporting import LocalReporter, load_state
from trainables.strategies.data_driven import block_influence, calibration_rows, choose_layers, task_loss
from trainables.student import build_student, layer_list
from trainables.teacher import TeacherConfig, finetune_teacher, load_teacher, weights_hash
from trainables.teacher_cache import load_or_build
from trainables.tiny import write_tiny_decoder, write_tiny_encoder

FAMILIES = ["modernbert", "llama"]
CPU = torch.device("cpu")
TOLERANCE = 1e-5


def final_norm(model: PreTrainedModel) -> torch.nn.Module:
    """The norm after the last block, whose input is the last block's output (an independent way to
    read it)."""
    base = model.model
    return base.final_norm if model.config.model_type == "modernbert" else base.norm


def residual_outputs(block: torch.nn.Module) -> list[torch.nn.Linear]:
    """The projections that write a block's attention and MLP into the residual stream."""
    if hasattr(block, "self_attn"):  # Llama
        return [block.self_attn.o_proj, block.mlp.down_proj]
    return [block.attn.Wo, block.mlp.Wo]  # ModernBERT


@pytest.fixture(scope="module", params=FAMILIES)
def world(request, tmp_path_factory, tiny_task: DataConfig) -> SimpleNamespace:
    """A 4-layer base of the family fine-tuned on the tiny task."""
    family = request.param
    root = tmp_path_factory.mktemp(family)
    if family == "llama":
        base = write_tiny_decoder(root / "base")
    else:
        base = write_tiny_encoder(root / "base", family=family)
    teacher_dir = root / "teacher"
    finetune_teacher(TeacherConfig(base=base, data=tiny_task, epochs=4, lr=3e-3, batch_size=16), teacher_dir)
    teacher, tokenizer, info = load_teacher(str(teacher_dir), "sst2")
    data = load_task_data(tiny_task, tokenizer)
    return SimpleNamespace(
        family=family,
        dir=str(teacher_dir),
        teacher=teacher,
        tokenizer=tokenizer,
        info=info,
        data=data,
        task=tiny_task,
    )


def batches(world: SimpleNamespace, rows=None, size: int = 32) -> list[dict[str, torch.Tensor]]:
    rows = world.data.validation if rows is None else rows
    return list(loop.make_loader(rows, world.tokenizer, size, CPU))


def trial(world: SimpleNamespace, **changes) -> TrialConfig:
    settings = {
        "teacher": world.dir,
        "data": world.task,
        "student_layers": 2,
        "epochs": 1,
        "lr": 3e-3,
        "batch_size": 16,
        "alpha_ce": 0.3,
        "alpha_kd": 0.5,
        "alpha_cos": 0.7,
        "temperature": 2.0,
        "device": "cpu",
        "precision": "fp32",
    }
    return TrialConfig(**{**settings, **changes})


def test_the_teacher_learns_the_task_and_pads_on_the_right(world) -> None:
    assert world.info["eval_accuracy"] > world.info["majority_accuracy"] + 0.25
    assert world.tokenizer.padding_side == "right"
    assert getattr(world.teacher.config, "use_cache", False) is False
    if world.family == "llama":  # its tokenizer has no pad token: it pads with </s>
        assert world.tokenizer.pad_token == world.tokenizer.eos_token == "</s>"
    assert world.teacher.config.pad_token_id == world.tokenizer.pad_token_id
    batch = batches(world)[-1]  # rows of different lengths, padded after each row's end
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()
    for row, length in zip(batch["input_ids"], lengths, strict=True):
        assert (row[length:] == world.tokenizer.pad_token_id).all()


def test_batched_evaluation_gives_each_rows_own_logits(world) -> None:
    """Padded batches score every row as it scores alone, unpadded: the classifier reads each row's
    own last (decoder) or first (encoder) token, whatever the batch."""
    with torch.no_grad():
        for batch in batches(world)[-2:]:
            together = world.teacher(**loop.model_inputs(batch)).logits
            for i, length in enumerate(batch["attention_mask"].sum(1)):
                alone = world.teacher(input_ids=batch["input_ids"][i : i + 1, :length]).logits
                torch.testing.assert_close(together[i], alone[0], rtol=0, atol=TOLERANCE)


def test_evaluation_scores_what_the_logits_say(world) -> None:
    scored = loop.evaluate(
        world.teacher,
        loop.make_loader(world.data.validation, world.tokenizer, 64, CPU),
        CPU,
        task_spec("sst2"),
        None,
    )
    logits, labels = [], []
    with torch.no_grad():
        for batch in batches(world):
            logits.append(world.teacher(**loop.model_inputs(batch)).logits)
            labels.append(batch["labels"])
    logits, labels = torch.cat(logits), torch.cat(labels)
    assert scored["accuracy"] == pytest.approx((logits.argmax(-1) == labels).double().mean().item())
    assert scored["loss"] == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    assert len(labels) == len(world.data.validation)


def test_the_cache_holds_the_live_teachers_logits_and_last_block_output(world) -> None:
    rows = world.data.train.select(range(40))
    cached = load_or_build(
        world.teacher, world.dir, weights_hash(world.dir), rows, world.tokenizer, True, CPU, 2**30
    )
    seen: list[torch.Tensor] = []
    hook = final_norm(world.teacher).register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        for batch in batches(world, rows, 16):
            with torch.no_grad():
                live = world.teacher(**loop.model_inputs(batch)).logits
            logits, hidden = cached.batch(batch["example_index"], batch["attention_mask"], CPU)
            mask = batch["attention_mask"].bool()
            torch.testing.assert_close(logits, live, rtol=0, atol=TOLERANCE)
            torch.testing.assert_close(hidden[mask], seen[-1][mask], rtol=0, atol=TOLERANCE)
    finally:
        hook.remove()


@pytest.mark.parametrize("layers", [[1, 3], [2, 4], [1, 4], [3, 4]])
def test_students_compute_the_teacher_without_the_other_layers(world, layers: list[int]) -> None:
    student = build_student(world.teacher, layers).eval()
    for batch in batches(world)[:2]:
        inputs = loop.model_inputs(batch)
        with torch.no_grad(), skipping(world.teacher, layers):
            expected = world.teacher(**inputs).logits
        with torch.no_grad():
            torch.testing.assert_close(student(**inputs).logits, expected, rtol=0, atol=TOLERANCE)


def test_one_distillation_step_gives_each_term_as_computed_by_hand(world) -> None:
    setup = prepare(trial(world, strategy="odd"))
    student = setup.student.eval()  # no dropout, so the hand computation sees the same forward
    assert not [m for m in student.modules() if type(m) is torch.nn.Dropout]
    batch = next(iter(loop.make_loader(setup.data.train, setup.tokenizer, 16, CPU, shuffle_seed=0)))
    terms = step_loss(setup)(batch)

    inputs = loop.model_inputs(batch)
    entering: dict[str, torch.Tensor] = {}
    hooks = [
        final_norm(student).register_forward_pre_hook(
            lambda m, args: entering.__setitem__("student", args[0])
        ),
        final_norm(setup.teacher).register_forward_pre_hook(
            lambda m, args: entering.__setitem__("teacher", args[0])
        ),
    ]
    try:
        with torch.no_grad():
            logits = student(**inputs).logits
            teacher_logits = setup.teacher(**inputs).logits
    finally:
        for hook in hooks:
            hook.remove()
    labels, mask = batch["labels"], batch["attention_mask"].bool()
    ce = F.cross_entropy(logits, labels)
    p_teacher = F.softmax(teacher_logits / 2.0, -1)
    kd = 4.0 * (p_teacher * (p_teacher.log() - F.log_softmax(logits / 2.0, -1))).sum(-1).mean()
    cos = (1 - F.cosine_similarity(entering["student"], entering["teacher"], dim=-1))[mask].mean()
    for name, value in {"ce": ce, "kd": kd, "cos": cos}.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4), name
        assert value.item() > 1e-4, name
    assert terms["loss"].item() == pytest.approx((0.3 * ce + 0.5 * kd + 0.7 * cos).item(), rel=1e-4)
    terms["loss"].backward()
    for index, block in enumerate(layer_list(student)):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters()), index


def identity_teacher(world, uneven_norm: bool = False) -> PreTrainedModel:
    """The fine-tuned teacher with layers 2 and 4 (the last) adding nothing to the residual stream;
    with `uneven_norm`, a final norm whose weights differ by dimension, as a pretrained model's do."""
    teacher = copy.deepcopy(world.teacher)
    with torch.no_grad():
        for layer in (2, 4):
            for projection in residual_outputs(layer_list(teacher)[layer - 1]):
                projection.weight.zero_()
        if uneven_norm:
            weight = final_norm(teacher).weight
            weight.copy_(1 + 0.5 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    return teacher


def test_block_influence_reads_the_blocks_not_the_hidden_states_tuple(world) -> None:
    """Layers 2 and 4 pass their input through: their Block Influence is 0 and auto:bi drops them.
    The last `hidden_states` entry is the final norm's output, so reading BI from that tuple would
    give layer 4 an influence it does not have."""
    teacher = identity_teacher(world, uneven_norm=True)
    rows = calibration_rows(world.data.train, 64, 0)
    scores = block_influence(teacher, batches(world, rows), CPU)
    assert scores[2] < 1e-6 and scores[4] < 1e-6
    assert min(scores[1], scores[3]) > 1e-3
    assert choose_layers("auto:bi", teacher, rows, world.tokenizer, 2, task_spec("sst2")).layers == [1, 3]
    batch = batches(world, rows)[0]
    with torch.no_grad():
        states = teacher(**loop.model_inputs(batch), output_hidden_states=True).hidden_states
    mask = batch["attention_mask"].bool()
    from_tuple = 1 - F.cosine_similarity(states[3][mask], states[4][mask], dim=-1).mean()
    assert from_tuple > 1e-2


def test_auto_drop_measures_the_truncated_teacher_by_its_students(world) -> None:
    """auto:drop's loss without a layer is the loss of the student without it: removing layer 2 or 4
    (which pass their input through) leaves exactly the teacher's own loss; removing 1 or 3 does not."""
    teacher = identity_teacher(world)
    rows = calibration_rows(world.data.train, 64, 0)
    choice = choose_layers("auto:drop", teacher, rows, world.tokenizer, 2, task_spec("sst2"))
    first = choice.steps[0]
    assert choice.scores == first and len(choice.steps) == 2 and len(choice.layers) == 2
    full = task_loss(teacher, batches(world, rows), task_spec("sst2"), CPU, None)
    assert first[2] == pytest.approx(full, rel=1e-5) and first[4] == pytest.approx(full, rel=1e-5)
    assert min(abs(first[1] - full), abs(first[3] - full)) > 1e-3


@pytest.mark.parametrize("strategy", ["odd", "top"])
def test_a_trial_trains_and_its_exported_student_loads_back(world, strategy: str, tmp_path: Path) -> None:
    config = trial(world, strategy=strategy, precision="auto")
    reporter = LocalReporter(tmp_path / "trial")
    (report,) = run_trial(config, reporter)
    assert report[vocabulary.TRAIN_LOSS_COS] > 0 and report[vocabulary.TRAIN_LOSS_KD] > 0
    assert report[metrics.EVAL_ACCURACY] > world.info["majority_accuracy"]
    assert report[vocabulary.TEACHER_LAYERS] == {"odd": "1,3", "top": "3,4"}[strategy]

    fake = SimpleNamespace(
        config=config.to_dict(),
        checkpoint=SimpleNamespace(as_directory=lambda: nullcontext(str(tmp_path / "trial"))),
        trial_id="t0",
        last_result=report,
    )
    out = tmp_path / "student"
    info = export_student(fake, world.dir, out, metrics.EVAL_ACCURACY, "test")
    assert info["teacher_layers"] == [int(layer) for layer in report[vocabulary.TEACHER_LAYERS].split(",")]
    saved = json.loads((out / STUDENT_INFO).read_text())
    reloads = not (world.family == "modernbert" and strategy == "top")
    assert ("does_not_load_back_as_itself" not in saved) == reloads

    trained = build_student(world.teacher, info["teacher_layers"])
    trained.load_state_dict(load_state(tmp_path / "trial")["student"])
    loaded = AutoModelForSequenceClassification.from_pretrained(out).eval()
    batch = loop.model_inputs(batches(world)[-1])
    with torch.no_grad():
        same = torch.allclose(loaded(**batch).logits, trained.eval()(**batch).logits, atol=TOLERANCE)
    assert same == reloads
    speed = measure_speed(world.dir, out, world.task, 16, 2)
    assert speed["student"]["layers"] == 2 and speed["teacher"]["layers"] == 4

"""Layer surgery on every family: a student equals its teacher with the other layers skipped.

The reference is the teacher's own forward pass with a forward hook on every layer outside the chosen
set returning the layer's input as its output (tests/families.py). A student of the chosen layers
must give the same logits, to 1e-5, for 4 layer sets per family; the refused families must be
refused from their config, before any compute, with the reason.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import ray
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from sweep.run import main
from tests.conftest import smoke_args
from tests.families import example_inputs, skipping, tiny_classifier, tiny_config
from trainables import architectures
from trainables.architectures import adapter_for, get_architecture, registered, supported_table
from trainables.blocks import watching
from trainables.errors import ConfigError
from trainables.student import build_student, check_surgery, layer_list
from trainables.tiny import write_tiny_decoder

REPO = Path(__file__).resolve().parents[1]
EXACT = [a.model_type for a in registered() if a.exact]
REFUSED = [a.model_type for a in registered() if not a.exact]
LAYER_SETS = {
    "even": [2, 4, 6, 8, 10, 12],
    "odd": [1, 3, 5, 7, 9, 11],
    "top": [7, 8, 9, 10, 11, 12],
    "mixed": [1, 2, 6, 7, 8, 12],
}
TOLERANCE = 1e-5


@functools.cache
def teacher(model_type: str) -> PreTrainedModel:
    """One 12-layer teacher per family, shared by its cases (surgery never changes the teacher)."""
    return tiny_classifier(model_type, layers=12)


def skipped_logits(model: PreTrainedModel, layers: list[int], inputs: dict) -> torch.Tensor:
    with skipping(model, layers), torch.no_grad():
        return model(**inputs).logits


def student_logits(model: PreTrainedModel, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(**inputs).logits


@pytest.mark.parametrize("name", LAYER_SETS)
@pytest.mark.parametrize("model_type", EXACT)
def test_student_logits_equal_the_teacher_with_the_other_layers_skipped(model_type: str, name: str) -> None:
    model, layers = teacher(model_type), LAYER_SETS[name]
    inputs = example_inputs(model)
    student = build_student(model, layers)
    assert student.config.num_hidden_layers == 6 and len(layer_list(student)) == 6
    expected = skipped_logits(model, layers, inputs)
    torch.testing.assert_close(student_logits(student, inputs), expected, rtol=0, atol=TOLERANCE)
    assert (expected - student_logits(model, inputs)).abs().max() > 0.1  # the skipped layers matter


@pytest.mark.parametrize("model_type", EXACT)
def test_student_block_i_computes_teacher_block_layers_i(model_type: str) -> None:
    """The hooks that read blocks (Block Influence, the hidden-state loss, the teacher cache) see in
    student block i what teacher block layers[i] computes, in every family."""
    model, layers = teacher(model_type), LAYER_SETS["mixed"]
    inputs = example_inputs(model)
    length = inputs["input_ids"].shape[1]
    student = build_student(model, layers).eval()
    seen: dict[str, dict[int, torch.Tensor]] = {"student": {}, "teacher": {}}

    def keeper(who: str):
        return lambda index, entering, leaving: seen[who].__setitem__(index, leaving)

    with torch.no_grad(), watching(student, keeper("student"), length):
        student(**inputs)
    with torch.no_grad(), skipping(model, layers), watching(model, keeper("teacher"), length):
        model(**inputs)
    real = inputs["attention_mask"].bool()
    for i, layer in enumerate(layers):
        torch.testing.assert_close(
            seen["student"][i][real], seen["teacher"][layer - 1][real], rtol=0, atol=TOLERANCE
        )


def test_a_decoders_hidden_states_end_with_the_final_norm_which_the_blocks_do_not() -> None:
    """Why blocks are read with hooks: Llama's last `hidden_states` entry is the final norm's output,
    not its last block's."""
    model = teacher("llama")
    inputs = example_inputs(model)
    kept: dict[int, torch.Tensor] = {}
    with torch.no_grad(), watching(model, lambda i, entering, leaving: kept.__setitem__(i, leaving), 12):
        states = model(**inputs, output_hidden_states=True).hidden_states
    assert len(states) == 13
    torch.testing.assert_close(states[11], kept[10], rtol=0, atol=0)
    assert not torch.allclose(states[12], kept[11], atol=1e-2)


PER_LAYER = {
    "longformer": ["attention_window"],
    "gemma2": ["layer_types"],
    "gemma3_text": ["layer_types"],
    "modernbert": ["layer_types"],
    "qwen2": ["layer_types"],
    "qwen3": ["layer_types"],
    "smollm3": ["no_rope_layers", "layer_types"],
}


@pytest.mark.parametrize("model_type", EXACT)
def test_per_layer_config_entries_are_found(model_type: str) -> None:
    config = teacher(model_type).config
    assert adapter_for(config).per_layer_entries(config) == PER_LAYER.get(model_type, [])


@pytest.mark.parametrize("model_type", sorted(PER_LAYER))
def test_each_copied_layer_keeps_its_own_per_layer_settings(model_type: str, monkeypatch) -> None:
    """The re-index is what makes these families exact: with per-layer entries cut to the student's
    first positions instead (what a plain `num_hidden_layers` change leaves), some layer set moves
    the logits or fails to build; with the re-index, each entry holds the chosen layers' values."""
    model = teacher(model_type)
    inputs = example_inputs(model)
    for name, layers in LAYER_SETS.items():
        config = build_student(model, layers).config
        for entry in PER_LAYER[model_type]:
            assert list(getattr(config, entry)) == [getattr(model.config, entry)[i - 1] for i in layers], name
    monkeypatch.setattr(architectures.Architecture, "per_layer_entries", lambda self, config: [])
    if model_type == "longformer":  # its class checks the length of the window list itself
        with pytest.raises(ConfigError, match="attention_window"):
            build_student(model, LAYER_SETS["even"])
        return
    worst = max(
        (student_logits(build_student(model, layers), inputs) - skipped_logits(model, layers, inputs))
        .abs()
        .max()
        for layers in LAYER_SETS.values()
    )
    assert worst > 1e-4


def test_qwen_max_window_layers_names_the_students_first_sliding_layer() -> None:
    model = teacher("qwen2")  # layers 6..12 slide (max_window_layers 5)
    assert build_student(model, [1, 3, 5, 7, 9, 11]).config.max_window_layers == 3
    assert build_student(model, [1, 2, 3, 4, 5, 6]).config.max_window_layers == 5
    assert build_student(model, [1, 2, 3]).config.max_window_layers == 3  # none slides


def test_modernbert_student_config_drops_the_derived_global_attention_period() -> None:
    model = teacher("modernbert")
    assert getattr(model.config, "global_attn_every_n_layers", None) == 3
    config = build_student(model, LAYER_SETS["even"]).config
    assert "global_attn_every_n_layers" not in config.to_dict()
    assert config.layer_types == [model.config.layer_types[i - 1] for i in LAYER_SETS["even"]]


@pytest.mark.parametrize("layers", [[2, 4, 6], [6, 1, 4], [1, 5, 9]])
def test_modernbert_blocks_keep_their_own_attention_norm(layers: list[int]) -> None:
    model = teacher("modernbert")
    student = build_student(model, layers)
    for block, layer in zip(layer_list(student), layers, strict=True):
        source = layer_list(model)[layer - 1].attn_norm
        assert type(block.attn_norm) is type(source)
        if isinstance(source, torch.nn.LayerNorm):
            assert torch.equal(block.attn_norm.weight, source.weight)
            assert block.attn_norm.weight.data_ptr() != source.weight.data_ptr()


def test_esm_contact_head_keeps_the_teachers_weights_of_the_students_layers() -> None:
    model = teacher("esm")
    layers = LAYER_SETS["mixed"]
    heads = model.config.num_attention_heads
    student = build_student(model, layers)
    full = model.esm.contact_head.regression.weight
    kept = student.esm.contact_head.regression.weight
    assert kept.shape == (1, len(layers) * heads)
    for i, layer in enumerate(layers):
        for head in range(heads):
            assert kept[0, i * heads + head] == full[0, (layer - 1) * heads + head]
    assert torch.equal(student.esm.contact_head.regression.bias, model.esm.contact_head.regression.bias)


@pytest.mark.parametrize("model_type", EXACT)
def test_a_saved_student_loads_back_as_itself(model_type: str, tmp_path: Path) -> None:
    """The student's config is a config of its class: saved and loaded with
    AutoModelForSequenceClassification, it computes the same logits (its first layer is teacher
    layer 1 here; see the ModernBERT test for the other case)."""
    model, layers = teacher(model_type), LAYER_SETS["mixed"]
    inputs = example_inputs(model)
    student = build_student(model, layers).eval()
    assert adapter_for(student.config).export_note(layers) is None
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(
        student_logits(loaded, inputs), student_logits(student, inputs), rtol=0, atol=TOLERANCE
    )


def test_a_saved_modernbert_student_whose_first_layer_is_deeper_says_it_does_not_load_back(
    tmp_path: Path,
) -> None:
    model, layers = teacher("modernbert"), LAYER_SETS["even"]
    inputs = example_inputs(model)
    student = build_student(model, layers).eval()
    note = adapter_for(student.config).export_note(layers)
    assert note and "teacher layer 2" in note and "model.layers.0.attn_norm" in note
    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert not torch.allclose(student_logits(loaded, inputs), student_logits(student, inputs), atol=1e-3)


@pytest.mark.parametrize("model_type", EXACT)
def test_a_scratch_student_has_the_pattern_of_the_teachers_first_layers(model_type: str) -> None:
    model = teacher(model_type)
    student = build_student(model, [], num_layers=3)
    assert student.config.num_hidden_layers == 3
    for entry in PER_LAYER.get(model_type, []):
        assert list(getattr(student.config, entry)) == list(getattr(model.config, entry)[:3])


@pytest.mark.parametrize("model_type", REFUSED)
def test_refused_families_are_refused_from_their_config_with_the_reason(model_type: str) -> None:
    config = tiny_config(model_type, layers=4)
    reason = get_architecture(model_type).refusal
    with pytest.raises(ConfigError, match="Layer surgery cannot build a student of") as refused:
        check_surgery(config, student_layers=2)
    assert reason in str(refused.value)
    with pytest.raises(ConfigError, match="Layer surgery cannot build a student of"):
        build_student(tiny_classifier(model_type, layers=4), [1, 3])


def test_gpt2_that_scales_attention_by_layer_position_is_refused() -> None:
    config = tiny_config("gpt2", scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(ConfigError, match="scale_attn_by_inverse_layer_idx"):
        check_surgery(config, student_layers=6)
    # and the refusal is right: a moved layer does compute something else
    model = tiny_classifier("gpt2", scale_attn_by_inverse_layer_idx=True)
    generic = architectures.Architecture("gpt2", "GPT-2")  # the rules without the refusal
    config = generic.student_config(model.config, LAYER_SETS["even"])
    student = type(model)(config).eval()
    student.load_state_dict(generic.student_state(model, student, LAYER_SETS["even"]))
    inputs = example_inputs(model)
    expected = skipped_logits(model, LAYER_SETS["even"], inputs)
    assert not torch.allclose(student_logits(student, inputs), expected, atol=1e-4)


@pytest.mark.parametrize("model_type", EXACT)
def test_supported_families_pass_the_check_on_the_meta_device(model_type: str) -> None:
    assert check_surgery(teacher(model_type).config, student_layers=6).model_type == model_type


@pytest.mark.parametrize("model_type", ["modernbert", "esm"])
def test_an_unregistered_family_that_surgery_cannot_copy_is_refused_before_compute(
    model_type: str, monkeypatch
) -> None:
    """Without their entries these families fail the generic surgery (a block that differs by
    position; a head sized by the layer count): check_surgery finds it on the meta device, from the
    config alone, and names the tensors at fault."""
    monkeypatch.setattr(architectures, "_REGISTRY", architectures._REGISTRY.copy(without=(model_type,)))
    with pytest.raises(ConfigError, match="needs its own entry in trainables/architectures.py|contact_head"):
        check_surgery(tiny_config(model_type), student_layers=6)


def test_an_unregistered_family_that_copies_cleanly_is_accepted_and_exact() -> None:
    """CamemBERT has no entry; the generic rules build its students exactly."""
    assert "camembert" not in {a.model_type for a in registered()}
    model = tiny_classifier("camembert", **{"pad_token_id": 0})
    check_surgery(model.config, student_layers=6)
    inputs = example_inputs(model)
    layers = LAYER_SETS["mixed"]
    torch.testing.assert_close(
        student_logits(build_student(model, layers), inputs),
        skipped_logits(model, layers, inputs),
        rtol=0,
        atol=TOLERANCE,
    )


def test_a_multimodal_config_is_refused_naming_its_text_model() -> None:
    config = tiny_config("gemma3", layers=4)
    config.model_type = "my-multimodal"
    with pytest.raises(ConfigError, match="use the gemma3_text model as the teacher"):
        check_surgery(config)


def test_an_encoder_decoder_config_is_refused_whatever_its_family() -> None:
    config = tiny_config("bart", layers=4)
    config.model_type = "my-seq2seq"
    with pytest.raises(ConfigError, match="two layer stacks"):
        check_surgery(config)


def test_an_unknown_architecture_name_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="Registered architectures: .*bert.*llama"):
        get_architecture("bret")


def test_the_families_in_the_docs_are_the_ones_tested() -> None:
    """docs/models.md holds the registry's table; every row that says exact is a family of the
    exactness test above, every refused row one of the refusal test, and kinds come from transformers."""
    text = (REPO / "docs" / "models.md").read_text()
    assert supported_table() in text
    rows = [line.split("|")[1:-1] for line in supported_table().splitlines()[2:]]
    claims = {row[1].strip().strip("`"): row[3].strip() for row in rows}
    assert {t for t, claim in claims.items() if claim == "exact"} == set(EXACT)
    assert {t for t, claim in claims.items() if claim == "refused"} == set(REFUSED)
    assert len(EXACT) == 27
    kinds = {t: row[2].strip() for t, row in zip(claims, rows, strict=True)}
    assert kinds["llama"] == kinds["gpt2"] == kinds["gemma3_text"] == "decoder"
    assert kinds["bert"] == kinds["modernbert"] == kinds["esm"] == "encoder"


def test_bigbird_is_tested_with_block_sparse_attention() -> None:
    model = teacher("big_bird")
    with torch.no_grad():
        model(**example_inputs(model))
    assert model.config.attention_type == "block_sparse"  # not the fallback to full attention


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        ("albert", "ALBERT shares one set of layer weights"),
        ("bart", "two layer stacks"),
        ("gemma3", "Use the text-only model (gemma3_text)"),
    ],
)
def test_a_study_with_a_refused_teacher_stops_in_its_preflight(
    model_type: str, message: str, world: dict, tmp_path: Path, capsys
) -> None:
    """`python -m sweep.run` refuses the teacher from its config.json, before Ray starts."""
    folder = tmp_path / model_type
    tiny_config(model_type, layers=4).save_pretrained(folder)
    code = main(smoke_args(world, tmp_path, "--dry-run", "--teacher", str(folder)))
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not ray.is_initialized()


def test_a_study_with_a_decoder_teacher_passes_its_preflight(world: dict, tmp_path: Path, capsys) -> None:
    """A Gemma-2 folder with weights and a tokenizer (the tiny Llama's, whose vocabulary it is sized to):
    the dry run loads it as the teacher stage would, and plans its students."""
    folder = tmp_path / "gemma2"
    tokenizer = AutoTokenizer.from_pretrained(write_tiny_decoder(tmp_path / "llama"))
    config = tiny_config("gemma2", layers=4, vocab_size=len(tokenizer), pad_token_id=None)
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    AutoModel.from_config(config).save_pretrained(folder)  # a base model: the teacher stage fine-tunes it
    tokenizer.save_pretrained(folder)
    assert main(smoke_args(world, tmp_path, "--dry-run", "--teacher", str(folder))) == 0, (
        capsys.readouterr().err
    )
    assert "from teacher layers bottom [1, 2], top [3, 4]" in capsys.readouterr().out

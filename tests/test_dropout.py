"""The cheap CPU dropout: its rate, scale and gradient, its seeding, and a model that uses it."""

import math

import pytest
import torch

from tests.conftest import ARCHITECTURES
from tests.families import tiny_classifier
from trainables.architectures import registered
from trainables.dropout import ATTENTION, Dropout, fast_dropout, use_fast_dropout


def test_drops_at_rate_p_and_scales_the_rest_so_the_mean_is_kept() -> None:
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 0.5
    y = fast_dropout(x, 0.1, training=True)
    dropped = (y == 0).double().mean().item()
    sigma = math.sqrt(0.1 * 0.9 / x.numel())
    assert abs(dropped - 0.1) < 5 * sigma
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.9, rtol=1e-6, atol=0)
    assert abs(y.mean().item() - x.mean().item()) < 0.01 * x.mean().item()


@pytest.mark.parametrize("p", [0.05, 0.25, 0.5, 0.9])
def test_the_rate_holds_for_any_p_and_for_bf16(p: float) -> None:
    torch.manual_seed(1)
    x = torch.ones(400, 1000, dtype=torch.bfloat16)
    y = fast_dropout(x, p, training=True)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    sigma = math.sqrt(p * (1 - p) / x.numel())
    assert abs((y == 0).float().mean().item() - p) < 5 * sigma


def test_off_when_evaluating_or_p_is_0_and_all_dropped_at_p_1() -> None:
    x = torch.randn(7, 5)
    assert fast_dropout(x, 0.3, training=False) is x
    assert fast_dropout(x, 0.0, training=True) is x
    assert torch.equal(fast_dropout(x, 1.0, training=True), torch.zeros_like(x))


def test_the_global_seed_fixes_the_mask() -> None:
    x = torch.ones(64, 33)  # an element count that is not a multiple of 4
    torch.manual_seed(3)
    first = fast_dropout(x, 0.5, training=True)
    torch.manual_seed(3)
    again = fast_dropout(x, 0.5, training=True)
    other = fast_dropout(x, 0.5, training=True)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(4)
    x = torch.randn(50, 40, requires_grad=True)
    y = fast_dropout(x, 0.2, training=True)
    y.sum().backward()
    expected = (y != 0).float() / 0.8
    assert torch.allclose(x.grad, expected)


def test_the_module_follows_train_and_eval_mode() -> None:
    layer = Dropout(0.5)
    x = torch.ones(100, 100)
    assert (layer.train()(x) == 0).any()
    assert layer.eval()(x) is x


def inputs() -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor([[5, 17, 42, 9, 3, 0], [8, 2, 11, 0, 0, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]]),
    }


@pytest.mark.parametrize("model_type", ARCHITECTURES)
def test_a_model_with_fast_dropout_evaluates_as_before(model_type: str) -> None:
    """Eval outputs equal the stock model's (dropout is off; eager and SDPA attention agree to
    rounding), and no stock dropout module is left."""
    model = tiny_classifier(model_type, layers=2)
    with torch.no_grad():
        before = model(**inputs()).logits
    # after a forward: BigBird builds full attention (with its dropout) for inputs too short for blocks
    stock = [name for name, m in model.named_modules() if type(m) is torch.nn.Dropout]
    use_fast_dropout(model)
    with torch.no_grad():
        after = model.eval()(**inputs()).logits
    assert torch.allclose(before, after, atol=1e-6)
    assert not [m for m in model.modules() if type(m) is torch.nn.Dropout]
    assert stock == [name for name, m in model.named_modules() if isinstance(m, Dropout)]


def set_attention_dropout(module: torch.nn.Module, p: float) -> None:
    """Set the attention dropout a module passes to the attention interface: an `nn.Dropout`'s p
    (BERT) or a plain number (ESM's `dropout`, DistilBERT's `attention_dropout`)."""
    for name in ("dropout", "attention_dropout"):
        value = getattr(module, name, None)
        if isinstance(value, torch.nn.Dropout):
            value.p = p
        elif isinstance(value, float):
            setattr(module, name, p)


FAST_ATTENTION = [a.model_type for a in registered() if a.exact and a.fast_attention]


@pytest.mark.parametrize("model_type", FAST_ATTENTION)
def test_attention_interface_models_drop_attention_weights_through_it(model_type: str) -> None:
    """With only attention dropout on, a training forward differs from eval: the attention weights
    are dropped by the registered eager attention, reproducibly under a seed."""
    model = tiny_classifier(model_type, layers=2)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    attention = [m for m in model.modules() if hasattr(m, "dropout") and "Attention" in type(m).__name__]
    for module in attention:
        set_attention_dropout(module, 0.5)
    use_fast_dropout(model)
    assert model.config._attn_implementation == ATTENTION
    with torch.no_grad():
        evaluated = model.eval()(**inputs()).logits
        torch.manual_seed(5)
        trained = model.train()(**inputs()).logits
        torch.manual_seed(5)
        again = model(**inputs()).logits
    assert not torch.allclose(evaluated, trained)
    assert torch.equal(trained, again)


def test_a_saved_model_does_not_name_the_attention_it_trained_with(tmp_path) -> None:
    """An exported student loads anywhere: the custom attention is not written to its config."""
    model = use_fast_dropout(tiny_classifier("bert", layers=2))
    model.save_pretrained(tmp_path)
    assert ATTENTION not in (tmp_path / "config.json").read_text()


@pytest.mark.parametrize("model_type", FAST_ATTENTION)
def test_the_swapped_attention_computes_the_familys_own_eager_attention(model_type: str) -> None:
    """In training mode with every dropout at 0, the registered attention gives the family's own eager
    attention's logits and gradients: it may stand in for it."""
    own = tiny_classifier(model_type, layers=2, attn_implementation="eager")
    swapped = use_fast_dropout(tiny_classifier(model_type, layers=2))
    assert swapped.config._attn_implementation == ATTENTION
    for model in (own, swapped):
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            set_attention_dropout(module, 0.0)
        model(**inputs()).logits.sum().backward()
    torch.testing.assert_close(swapped(**inputs()).logits, own(**inputs()).logits, rtol=0, atol=1e-6)
    for (name, mine), (_, theirs) in zip(swapped.named_parameters(), own.named_parameters(), strict=True):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("model_type", sorted(set(ARCHITECTURES) - set(FAST_ATTENTION)))
def test_other_families_keep_their_own_attention(model_type: str) -> None:
    model = tiny_classifier(model_type, layers=2)
    before = model.config._attn_implementation
    assert use_fast_dropout(model).config._attn_implementation == before

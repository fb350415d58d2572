"""dvc.yaml declares exactly the code each stage runs, so a change reruns what it touches."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "unetseg"


def _unetseg_imports(path: Path) -> set[str]:
    """Module names of unetseg imported by one file (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "unetseg":
            if node.module == "unetseg":
                names.update(alias.name for alias in node.names)
            else:
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("unetseg."))
    return {n for n in names if (PACKAGE / f"{n}.py").exists()}


def code_closure(script: Path) -> set[str]:
    """The script and every unetseg module it reaches (the package's __init__ runs first), as repo-relative paths."""
    seen, todo = set(), list(_unetseg_imports(script) | _unetseg_imports(PACKAGE / "__init__.py"))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_unetseg_imports(PACKAGE / f"{name}.py"))
    return {f"stages/{script.name}", "src/unetseg/__init__.py"} | {f"src/unetseg/{n}.py" for n in seen}


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_exactly_the_code_it_runs(name):
    declared = {d for d in STAGES[name]["deps"] if d.startswith(("src/", "stages/"))}
    assert declared == code_closure(ROOT / "stages" / f"{name}.py")


def test_every_stage_script_is_a_stage():
    scripts = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert scripts == set(STAGES)

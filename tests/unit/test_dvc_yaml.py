"""dvc.yaml declares exactly the code each stage runs, so a change reruns what it touches: the stage's
script and each library subpackage it reaches, as one directory dependency (one column of
`dvc exp show` per subpackage, not one per module)."""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "unetseg"


def _module_file(dotted: str) -> Path | None:
    """The file of a unetseg module (`unetseg.core.atomic`) or package (`unetseg.core`), if there is one."""
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _unetseg_imports(path: Path) -> set[str]:
    """Dotted names of the unetseg modules one file imports (at any depth of the file)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "unetseg":
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from unetseg.core import atomic`
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("unetseg."))
    return {n for n in names if _module_file(n) is not None}


def _with_packages(dotted: str) -> set[str]:
    """A module and the packages above it, whose __init__ files Python runs first."""
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def code_closure(script: Path) -> set[str]:
    """The script and every unetseg file it reaches (each package's __init__ runs first), as repo-relative paths."""
    seen, todo = set(), list(_unetseg_imports(script) | {"unetseg"})
    while todo:
        for name in _with_packages(todo.pop()) - seen:
            seen.add(name)
            todo.extend(_unetseg_imports(_module_file(name)))
    return {f"stages/{script.name}"} | {str(_module_file(n).relative_to(ROOT)) for n in seen}


def code_dependencies(script: Path) -> set[str]:
    """`code_closure` by subpackage: the script, the package's __init__.py and each subpackage's folder."""
    found = set()
    for path in code_closure(script):
        parts = Path(path).parts
        found.add(path if parts[0] == "stages" or len(parts) == 3 else "/".join(parts[:3]))
    return found


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_exactly_the_code_it_runs(name):
    declared = {d for d in STAGES[name]["deps"] if d.startswith(("src/", "stages/"))}
    assert declared == code_dependencies(ROOT / "stages" / f"{name}.py")


def test_compiled_files_are_no_dependency():
    """Python writes __pycache__ into the subpackage folders DVC hashes: ignored, or every import would
    change a dependency."""
    ignored = (ROOT / ".dvcignore").read_text().split()
    assert "__pycache__/" in ignored and "*.pyc" in ignored


def test_every_stage_script_is_a_stage():
    scripts = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert scripts == set(STAGES)

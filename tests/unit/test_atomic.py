import os

import pytest

from unetseg.core import atomic
from unetseg.core.atomic import atomic_output


def test_success_replaces_the_old_output(tmp_path):
    final = tmp_path / "out" / "folder"
    final.mkdir(parents=True)
    (final / "stale.txt").write_text("old")
    with atomic_output(final) as temporary:
        temporary.mkdir()
        (temporary / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.txt"]
    assert [p.name for p in final.parent.iterdir()] == ["folder"]


def test_failure_leaves_nothing_under_the_final_name(tmp_path):
    final = tmp_path / "model.keras"
    with pytest.raises(RuntimeError):
        with atomic_output(final) as temporary:
            assert temporary.suffix == ".keras"
            temporary.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_kill_while_renaming_keeps_the_old_output_whole(tmp_path, monkeypatch, kind):
    """The kill lands at the rename (os.replace, or the folder swap): the old output stays, whole."""
    final = tmp_path / ("out.csv" if kind == "file" else "plots")
    write = (lambda p, text: p.write_text(text)) if kind == "file" else (
        lambda p, text: (p.mkdir(), (p / "a.csv").write_text(text), (p / "b.csv").write_text(text)))
    write(final, "old")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    monkeypatch.setattr(atomic, "_exchange", killed)
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(final) as temporary:
            write(temporary, "new")
    old = [final] if kind == "file" else sorted(final.iterdir())
    assert [p.read_text() for p in old] == ["old"] * len(old) and len(old) == (1 if kind == "file" else 2)
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # and no temporary left


def test_a_folder_replaces_a_folder_in_one_swap_where_the_system_can(tmp_path, monkeypatch):
    final = tmp_path / "plots"
    final.mkdir()
    (final / "old.csv").write_text("old")
    calls = []
    monkeypatch.setattr(atomic.os, "replace", lambda *a: calls.append(a) or os.rename(*a))
    with atomic_output(final) as temporary:
        temporary.mkdir()
        (temporary / "new.csv").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]
    assert calls == [] or len(calls) == 2  # renameat2's exchange, or the two renames where it is missing

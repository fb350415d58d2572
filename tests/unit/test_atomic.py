import pytest

from unetseg.atomic import atomic_output


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

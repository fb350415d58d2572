from pathlib import Path

import pytest

from unetseg.core.errors import DataError
from unetseg.data.pairing import Pair
from unetseg.data.pairs_table import read_pairs
from unetseg.data.splitting import split_pairs, split_summary

CARVANA = r"^([^_]+)_"


def _pairs(objects=10, views=4):
    return [Pair(f"obj{o:02d}_{v:02d}", Path(f"i/obj{o:02d}_{v:02d}.jpg"), Path(f"m/obj{o:02d}_{v:02d}_mask.gif"))
            for o in range(objects) for v in range(views)]


def test_no_group_on_both_sides():
    table = split_pairs(_pairs(), 0.2, seed=1, group_pattern=CARVANA)
    train = set(table[table.split == "train"].group)
    validation = set(table[table.split == "validation"].group)
    assert train and validation and not train & validation
    assert len(validation) == 2 and split_summary(table)["validation_images"] == 8


def test_same_seed_same_split_other_seed_other_split():
    a = split_pairs(_pairs(), 0.2, seed=1, group_pattern=CARVANA)
    b = split_pairs(_pairs(), 0.2, seed=1, group_pattern=CARVANA)
    c = split_pairs(_pairs(), 0.2, seed=2, group_pattern=CARVANA)
    assert a.equals(b) and not a.split.equals(c.split)


def test_empty_pattern_splits_by_image():
    table = split_pairs(_pairs(), 0.25, seed=0, group_pattern="")
    assert (table.group == table.id).all() and (table.split == "validation").sum() == 10


def test_group_pattern_that_misses_ids_is_an_error():
    with pytest.raises(DataError, match="finds no group in 40 id"):
        split_pairs(_pairs(), 0.2, seed=0, group_pattern=r"^car(\d+)")


def test_one_group_cannot_be_split():
    with pytest.raises(DataError, match="need at least 2"):
        split_pairs(_pairs(objects=1), 0.2, seed=0, group_pattern=CARVANA)


@pytest.mark.parametrize("objects, fraction", [(3, 0.9), (2, 0.6), (10, 0.95)])
def test_a_validation_fraction_that_leaves_no_training_group_is_named(objects, fraction):
    with pytest.raises(DataError, match=rf"split.val_fraction {fraction} sends all {objects} groups to validation"):
        split_pairs(_pairs(objects=objects), fraction, seed=0, group_pattern=CARVANA)
    # just below the limit still splits, with a group on each side
    table = split_pairs(_pairs(objects=objects), (objects - 1) / objects - 1e-9, seed=0, group_pattern=CARVANA)
    assert set(table.split) == {"train", "validation"}


def test_pairs_table_round_trip(tmp_path):
    table = split_pairs(_pairs(), 0.2, seed=0, group_pattern=CARVANA)
    table.to_csv(tmp_path / "pairs.csv", index=False)
    assert read_pairs(tmp_path / "pairs.csv").equals(table.astype(str))
    table.drop(columns="group").to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match="bad.csv: missing column"):
        read_pairs(tmp_path / "bad.csv")


def _groups_csv(tmp_path, rows, header="id,group"):
    path = tmp_path / "groups.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


def test_a_groups_file_gives_groups_the_names_do_not_carry(tmp_path):
    # patients the names do not show: ids 0-39 in 8 patients of 5, by id for some rows and by file name for others
    rows = [f"{p.id if i % 2 else p.image.name}, patient{i // 5}" for i, p in enumerate(_pairs())]
    groups = _groups_csv(tmp_path, rows + ["someone_else.jpg,patient99"])  # rows of other files are allowed
    table = split_pairs(_pairs(), 0.25, seed=0, group_pattern="", groups_file=groups)
    assert list(table.group) == [f"patient{i // 5}" for i in range(40)]
    train, validation = (set(table[table.split == side].group) for side in ("train", "validation"))
    assert len(validation) == 2 and not train & validation
    # the names' own grouping (by object) would have split the patients across both sides
    by_name = split_pairs(_pairs(), 0.25, seed=0, group_pattern=CARVANA)
    assert not by_name.group.equals(table.group)


@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    ("", "not a CSV of id,group"),
    ("image,patient\nobj00_00,a\n", "no column id or group"),
    ("id,group\nobj00_00,\n", r"an empty group on line\(s\) 2"),
    ("id,group\nobj00_00,a\nobj00_00,b\n", "1 id\\(s\\) in two groups: obj00_00"),
    ("id,group\nobj00_00,a\n", "no group for 39 image"),
])
def test_a_bad_groups_file_is_named_with_its_problem(tmp_path, content, message):
    path = tmp_path / "groups.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=rf"^split.groups: {path}: {message}"):
        split_pairs(_pairs(), 0.2, seed=0, group_pattern="", groups_file=str(path))


def test_too_few_groups_in_the_file_names_the_file(tmp_path):
    groups = _groups_csv(tmp_path, [f"{p.id},everyone" for p in _pairs()])
    with pytest.raises(DataError, match=rf"1 group\(s\): need at least 2 \(split.groups {groups}\)"):
        split_pairs(_pairs(), 0.2, seed=0, group_pattern="", groups_file=groups)

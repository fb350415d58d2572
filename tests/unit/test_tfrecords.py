import json

import numpy as np
import pytest

from unetseg.core.errors import DataError
from unetseg.preprocess.tfrecords import (
    Example,
    parse_example,
    serialize,
    shard_files,
    write_manifest,
    write_shards,
)


def _examples(n, rng):
    return [
        Example(f"id{i}", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
                (rng.random((4, 4)) > 0.5).astype(np.uint8), (1280 + i, 1918))
        for i in range(n)
    ]


def _write(tmp_path, examples, num_shards):
    rows = write_shards(map(serialize, examples), len(examples), tmp_path, "validation", num_shards)
    write_manifest(tmp_path, (4, 4), {"validation": rows})
    return rows


def test_round_trip_is_exact_and_in_order(tmp_path, rng):
    import tensorflow as tf

    examples = _examples(5, rng)
    rows = _write(tmp_path, examples, num_shards=2)
    assert [r["file"] for r in rows] == ["validation-00000-of-00002.tfrecord", "validation-00001-of-00002.tfrecord"]
    assert [r["records"] for r in rows] == [2, 3] or [r["records"] for r in rows] == [3, 2]
    files = shard_files(tmp_path, "validation")
    decoded = list(tf.data.TFRecordDataset(files).map(parse_example))
    assert len(decoded) == 5
    for example, (image, mask, id_, size) in zip(examples, decoded):
        assert id_.numpy().decode() == example.id
        assert np.array_equal(image.numpy(), example.image)
        assert np.array_equal(mask.numpy()[..., 0], example.mask)
        assert tuple(size.numpy()) == example.original_size


def test_never_more_shards_than_records(tmp_path, rng):
    rows = _write(tmp_path, _examples(2, rng), num_shards=8)
    assert len(rows) == 2


def test_shard_cut_at_a_record_boundary_is_caught(tmp_path, rng):
    _write(tmp_path, _examples(4, rng), num_shards=2)
    shard = tmp_path / "validation-00001-of-00002.tfrecord"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="validation-00001-of-00002.tfrecord: sha256 differs"):
        shard_files(tmp_path, "validation")


def test_empty_and_missing_shards_are_caught(tmp_path, rng):
    _write(tmp_path, _examples(2, rng), num_shards=2)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["splits"]["validation"][0]["records"] = 0
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="shard is empty"):
        shard_files(tmp_path, "validation")
    manifest["splits"]["validation"][0]["records"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "validation-00001-of-00002.tfrecord").unlink()
    with pytest.raises(DataError, match="missing"):
        shard_files(tmp_path, "validation")


def test_missing_manifest_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="run the preprocess stage"):
        shard_files(tmp_path, "train")


def test_shards_are_byte_identical_across_processes(tmp_path):
    """The same examples give the same shard bytes in another process (protobuf map order fixed)."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from unetseg.preprocess.tfrecords import Example, serialize, write_shards\n"
        "rng = np.random.default_rng(0)\n"
        "examples = [Example(f'id{i}', rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),\n"
        "            (rng.random((4, 4)) > 0.5).astype(np.uint8), (8, 8)) for i in range(3)]\n"
        "write_shards(map(serialize, examples), 3, Path(sys.argv[1]), 'train', 1)\n"
    )
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True,
                       env={**os.environ, "PYTHONHASHSEED": "1" if name == "a" else "2"})
    shard = "train-00000-of-00001.tfrecord"
    assert (tmp_path / "a" / shard).read_bytes() == (tmp_path / "b" / shard).read_bytes()

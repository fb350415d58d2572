import json

from conftest import tiny_params
from unetseg.pairing import pair_images_with_masks
from unetseg.params import params_from_dict
from unetseg.preprocessing import write_tfrecords
from unetseg.splitting import split_pairs


def test_parallel_workers_write_the_same_shards_as_one(sample_dir, tmp_path):
    data = params_from_dict(tiny_params()).data
    pairs = split_pairs(
        pair_images_with_masks(sample_dir / "train", sample_dir / "train_masks", "{stem}_mask.gif"),
        0.25, seed=0, group_pattern=r"^([^_]+)_",
    )
    manifests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        counts = write_tfrecords(pairs, out, (32, 32), 2, data, workers=workers)
        assert counts == {"train": 9, "validation": 3}
        manifests.append(json.loads((out / "manifest.json").read_text()))
    assert manifests[0] == manifests[1]  # same records, same order, same bytes (sha256)

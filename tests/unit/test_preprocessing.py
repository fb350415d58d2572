import json

import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from conftest import tiny_params
from unetseg.config.loading import params_from_dict
from unetseg.config.params import Inference
from unetseg.core.application import RESIZE, Application
from unetseg.data.decoding import read_image
from unetseg.data.pairing import pair_images_with_masks
from unetseg.data.resize import resize_image
from unetseg.data.splitting import split_pairs
from unetseg.infer.inference import predict_paths
from unetseg.model.unet import build_unet
from unetseg.preprocess.preprocessing import write_tfrecords
from unetseg.preprocess.tfrecords import parse_example, shard_files


def test_parallel_workers_write_the_same_shards_as_one(sample_dir, tmp_path):
    data = params_from_dict(tiny_params()).data
    pairs = split_pairs(
        pair_images_with_masks(sample_dir / "train", sample_dir / "train_masks", "{stem}_mask.gif"),
        0.25, seed=0, group_pattern=r"^([^_]+)_",
    )
    manifests = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        counts = write_tfrecords(pairs, out, Application(RESIZE, (32, 32)), 2, data, workers=workers)
        assert counts == {"train": 9, "validation": 3}
        manifests.append(json.loads((out / "manifest.json").read_text()))
    assert manifests[0] == manifests[1]  # same records, same order, same bytes (sha256)


def test_predict_serves_the_model_the_pixels_it_was_trained_on(sample_dir, tmp_path):
    """A large JPEG: preprocess decodes it at reduced scale; predict must give the model the same input."""
    small_image = np.asarray(Image.open(sorted((sample_dir / "train").iterdir())[0]))
    large = Image.fromarray(small_image).resize((384, 288), Image.BICUBIC)
    large.save(tmp_path / "big.jpg", quality=90)
    Image.fromarray(np.zeros((288, 384), np.uint8)).save(tmp_path / "big_mask.png")
    pairs = pd.DataFrame({"id": ["big"] * 2, "image": [str(tmp_path / "big.jpg")] * 2,
                          "mask": [str(tmp_path / "big_mask.png")] * 2, "group": ["a", "b"],
                          "split": ["train", "validation"]})
    write_tfrecords(pairs, tmp_path / "records", Application(RESIZE, (32, 32)), 1, params_from_dict(tiny_params()).data)
    record = next(iter(tf.data.TFRecordDataset(shard_files(tmp_path / "records", "validation"))))
    stored = parse_example(record)[0].numpy()
    model = build_unet((32, 32, 3), filters=2, num_layers=2)
    (prediction,) = predict_paths(model, [tmp_path / "big.jpg"], Inference(0.5, False, False))
    assert np.array_equal(prediction.small, stored)
    assert prediction.mask.shape == (288, 384)
    full_decode = resize_image(read_image(tmp_path / "big.jpg"), (32, 32))
    assert not np.array_equal(full_decode, stored)  # the full decode that predict used to serve differs

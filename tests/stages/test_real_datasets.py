"""The data rules on the real datasets of ../shared/datasets (skipped, with the reason, when absent)."""

import numpy as np
from PIL import Image

from conftest import shared_dataset, tiny_params
from unetseg.cli import main as unetseg
from unetseg.config.loading import params_from_dict
from unetseg.core.application import RESIZE, Application
from unetseg.data.checking import check_data
from unetseg.infer.rle import rle_decode
from unetseg.preprocess.preprocessing import load_example


def _data(**overrides):
    return params_from_dict(tiny_params(data=overrides)).data


def test_isbi_membranes_pass_the_check():
    root = shared_dataset("isbi2012-membranes")
    check = check_data(root / "images", root / "masks", _data(mask_pattern="{stem}.png"))
    pairs, summary, problems = check.pairs, check.summary, check.problems
    assert problems == [] and summary["pairs"] == len(pairs) == 30
    assert summary["images"]["modes"] == {"L": 30} and summary["masks"]["sizes"] == {"512x512": 30}
    assert 0.7 < summary["foreground_fraction"]["mean"] < 0.85  # 255 = cell interior, about 78 %


def test_carvana_sample_passes_the_check():
    root = shared_dataset("carvana-sample")
    check = check_data(root / "train", root / "train_masks", _data())
    summary, problems = check.summary, check.problems
    assert problems == [] and summary["pairs"] == 384 and summary["masks"]["formats"] == {"GIF": 384}


def test_carvana_full_resolution(tmp_path):
    """One 1918x1280 pair: checked, preprocessed to the model size, predicted back at full size."""
    root = shared_dataset("carvana-fullres")
    check = check_data(root / "train", root / "train_masks", _data())
    pairs, summary, problems = check.pairs, check.summary, check.problems
    assert problems == [] and summary["images"]["sizes"] == {"1918x1280": 1}
    example = load_example(pairs[0].id, pairs[0].image, pairs[0].mask, Application(RESIZE, (128, 128)), _data())
    assert example.original_size == (1280, 1918) and example.mask.shape == (128, 128)
    assert 0.05 < example.mask.mean() < 0.6

    from unetseg.model.modelfile import save_model
    from unetseg.model.unet import build_unet

    save_model(build_unet((128, 128, 3), filters=2, num_layers=2), tmp_path / "model.keras")
    assert unetseg(["predict", str(tmp_path / "model.keras"), str(root / "train"), str(tmp_path / "out"),
                    "--rle", str(tmp_path / "submission.csv")]) == 0
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{pairs[0].id}.png"))
    assert mask.shape == (1280, 1918)
    row = (tmp_path / "submission.csv").read_text().splitlines()[1]
    assert row.startswith(f"{pairs[0].id}.jpg,")
    assert np.array_equal(rle_decode(row.split(",")[1], (1280, 1918)), mask // 255)


def test_reduced_scale_jpeg_decode_is_within_tolerance():
    """Preprocess decodes a full-size Carvana JPEG at 1/8 scale: within 1.5 grey levels on average
    (PSNR above 35 dB) of a full decode resized the same way, and the mask is identical."""
    from unetseg.data.decoding import read_image
    from unetseg.data.masks import read_mask
    from unetseg.data.resize import resize_image, resize_mask

    root = shared_dataset("carvana-fullres")
    image_path = next((root / "train").iterdir())
    mask_path = next((root / "train_masks").iterdir())
    reduced, info = read_image(image_path, with_info=True, reduce_to=(128, 128))
    assert reduced.shape == (160, 240, 3) and info.size == (1280, 1918)  # decoded at 1/8
    full = read_image(image_path)
    ours = resize_image(reduced, (128, 128)).astype(float)
    reference = resize_image(full, (128, 128)).astype(float)
    mad = np.abs(ours - reference).mean()
    psnr = 10 * np.log10(255**2 / ((ours - reference) ** 2).mean())
    assert mad < 1.5 and psnr > 35, (mad, psnr)
    example = load_example("x", image_path, mask_path, Application(RESIZE, (128, 128)), _data())
    assert np.array_equal(example.mask, resize_mask(read_mask(mask_path).mask, (128, 128)))

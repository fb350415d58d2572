import numpy as np
import pytest
from PIL import Image

from unetseg.cli import main as unetseg
from unetseg.config.params import Inference
from unetseg.core.errors import DataError
from unetseg.infer.prediction import predict_folder
from unetseg.infer.rle import rle_decode
from unetseg.model.applying import binarize, largest_component, mask_at, probabilities
from unetseg.model.modelfile import save_model
from unetseg.model.unet import build_unet

PLAIN = Inference(0.5, False, False)
OPTIONS = {"threshold": 0.5, "tta_flip": False, "largest_component": False}  # the command line's


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.keras"
    save_model(build_unet((32, 32, 3), filters=2, num_layers=2), path)
    return path


@pytest.fixture
def images(tmp_path, rng):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, size in (("a.jpg", (50, 30)), ("b.png", (17, 23)), ("c.png", (64, 64))):  # 17x23: not /4
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_largest_component_keeps_the_biggest_region():
    mask = np.zeros((8, 8), np.uint8)
    mask[0:2, 0:2] = 1
    mask[4:8, 4:8] = 1
    kept = largest_component(mask)
    assert kept[5, 5] == 1 and kept[0, 0] == 0 and kept.sum() == 16
    assert binarize(mask.astype(float), Inference(0.5, False, True)).sum() == 16


def test_mask_at_original_size():
    p = np.zeros((4, 4), np.float32)
    p[:, 2:] = 1.0
    mask = mask_at(p, (8, 12), PLAIN)
    assert mask.shape == (8, 12) and mask[:, :5].sum() == 0 and mask[:, 7:].all()


def test_flip_averaging_is_symmetric():
    class Model:  # stands for a network that only looks at the left half
        def predict_on_batch(self, x):
            out = np.zeros(x.shape[:3] + (1,), np.float32)
            out[:, :, : x.shape[2] // 2] = 1.0
            return out

    images = np.zeros((1, 4, 6, 3), np.float32)
    assert probabilities(Model(), images, tta_flip=False)[0, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert probabilities(Model(), images, tta_flip=True)[0, 0].tolist() == [0.5] * 6


def test_predict_a_folder_at_each_images_size_with_rle(model_file, images, tmp_path):
    out = tmp_path / "out"
    assert predict_folder(model_file, images, out, OPTIONS, rle_path=tmp_path / "sub.csv", progress=False) == []
    sizes = {p.stem: Image.open(p).size for p in images.iterdir()}
    for stem, size in sizes.items():
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png"))
        assert mask.shape == size[::-1] and set(np.unique(mask)) <= {0, 255}
        assert Image.open(out / "overlays" / f"{stem}.jpg").size == size
    rows = (tmp_path / "sub.csv").read_text().splitlines()
    assert rows[0] == "img,rle_mask" and {r.split(",")[0] for r in rows[1:]} == {"a.jpg", "b.png", "c.png"}
    img, rle = next(r for r in rows[1:] if r.startswith("b.png")).split(",")
    assert np.array_equal(rle_decode(rle, (23, 17)), np.asarray(Image.open(out / "masks" / "b.png")) // 255)


def test_bad_file_stops_or_is_listed_with_keep_going(model_file, images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png: cannot decode image"):
        predict_folder(model_file, images, tmp_path / "stop", OPTIONS, progress=False)
    status = unetseg(["predict", str(model_file), str(images), str(tmp_path / "go"), "--keep-going"])
    err = capsys.readouterr().err
    assert status == 1 and "broken.png: cannot decode image" in err and "1 file(s) could not be predicted" in err
    assert sorted(p.name for p in (tmp_path / "go" / "masks").iterdir()) == ["a.png", "b.png", "c.png"]


def test_inputs_are_never_overwritten(model_file, images, capsys):
    before = {p.name: p.read_bytes() for p in images.iterdir()}
    assert unetseg(["predict", str(model_file), str(images), str(images)]) == 1
    assert unetseg(["predict", str(model_file), str(images), str(images / "sub")]) == 1
    assert "must lie outside the input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in images.iterdir()} == before


def test_inputs_whose_outputs_would_collide_are_refused(model_file, images, tmp_path):
    Image.open(images / "b.png").save(images / "b.jpg")  # b.jpg and b.png would both write masks/b.png
    with pytest.raises(DataError, match=r"1 output name\(s\) shared by several inputs, nothing written: "
                                         r"b.jpg, b.png -> masks/b.png"):
        predict_folder(model_file, images, tmp_path / "out", OPTIONS, progress=False)
    assert not (tmp_path / "out").exists()


def test_keep_going_with_no_readable_file_writes_an_empty_folder_and_lists_every_file(model_file, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert unetseg(["predict", str(model_file), str(broken), str(tmp_path / "out"), "--keep-going"]) == 1
    assert "x.png: cannot decode image" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == [] and [p.name for p in tmp_path.iterdir() if p.name[0] == "."] == []


def test_an_rle_file_inside_the_replaced_output_folder_is_refused(model_file, images, tmp_path, capsys):
    assert unetseg(["predict", str(model_file), str(images), str(tmp_path / "out"), "--rle",
                    str(tmp_path / "out" / "sub.csv")]) == 1
    assert "the RLE file must lie outside the output folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

import ast
from pathlib import Path

import numpy as np
import pytest

from unetseg.model.unet import build_unet


def _conv(cin, cout, k):
    return k * k * cin * cout + cout


def seed_parameter_count(filters=64, num_layers=4, channels=3):
    """The seed network's parameters, counted from its description (the seed post: ../shared/DESIGN.md)."""
    total, cin, f = 0, channels, filters
    for _ in range(num_layers):
        total += _conv(cin, f, 3) + _conv(f, f, 3)
        cin, f = f, f * 2
    total += _conv(cin, f, 3) + _conv(f, f, 3)
    for _ in range(num_layers):
        f //= 2
        total += _conv(2 * f, f, 2) + _conv(2 * f, f, 3) + _conv(f, f, 3)
    return total + _conv(f, 1, 1)


def test_seed_network_layer_for_layer():
    model = build_unet(input_shape=(128, 128, 3), num_classes=1, filters=64, num_layers=4,
                       dropout=0.5, output_activation="sigmoid")
    assert model.count_params() == seed_parameter_count()
    kinds = [type(layer).__name__ for layer in model.layers]
    expected = ["InputLayer"]
    for _ in range(4):
        expected += ["Conv2D", "Conv2D", "MaxPooling2D"]
    expected += ["Dropout", "Conv2D", "Conv2D"]
    for _ in range(4):
        expected += ["Conv2DTranspose", "Concatenate", "Conv2D", "Conv2D"]
    expected += ["Conv2D"]
    assert kinds == expected
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024,
                                          512, 512, 256, 256, 128, 128, 64, 64, 1]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs[:-1])
    assert all(c.activation.__name__ == "relu" for c in convs[:-1])
    assert all(type(c.kernel_initializer).__name__ == "HeNormal" for c in convs[:-1])
    assert convs[-1].kernel_size == (1, 1) and convs[-1].activation.__name__ == "sigmoid"
    transposes = [layer for layer in model.layers if type(layer).__name__ == "Conv2DTranspose"]
    assert [(t.filters, t.kernel_size, t.strides) for t in transposes] == [
        (f, (2, 2), (2, 2)) for f in (512, 256, 128, 64)
    ]
    assert model.get_layer("dropout").rate == 0.5
    # The skip connection comes first in each concatenation, as in the seed.
    concat = model.get_layer("up4_concat")
    assert concat.input[0].shape[-1] == 512 and concat.input[0].shape[1] == 16
    assert model.output_shape == (None, 128, 128, 1)


def test_batch_norm_and_no_dropout_options():
    model = build_unet((32, 32, 3), filters=4, num_layers=2, dropout=0.0, batch_norm=True)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "Dropout" not in kinds
    assert kinds.count("BatchNormalization") == (kinds.count("Conv2D") - 1) // 2  # once a block of two


def test_size_not_divisible_is_refused():
    with pytest.raises(ValueError, match="not divisible by 2\\*\\*num_layers = 16"):
        build_unet((100, 128, 3))


def test_any_size_when_left_open():
    model = build_unet((None, None, 3), filters=2, num_layers=2)
    out = model.predict_on_batch(np.zeros((1, 48, 64, 3), "float32"))
    assert out.shape == (1, 48, 64, 1)


@pytest.mark.parametrize("module", ["model/unet.py", "train/losses.py"])
def test_model_code_is_pure_keras(module):
    """No TensorFlow in the model, losses or metrics: they must run under JAX or PyTorch too."""
    source = (Path(__file__).resolve().parents[2] / "src" / "unetseg" / module).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "tensorflow" not in imported and "keras" in imported

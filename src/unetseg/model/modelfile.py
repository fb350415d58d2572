"""Model files: saved reproducibly and atomically; loaded as the code they are, checked, in safe mode.

A `.keras` file is a zip whose config.json names the classes and functions to
build. A Lambda layer carries Python bytecode, and a config entry can name any
importable function; either would run while the file loads. Such files are refused,
naming the file and the entry, before Keras reads them (and Keras itself loads in
safe mode).

A model trained on named classes, on patches, under a pretrained encoder or on 16-bit
images of fewer bits also carries what applying it needs besides the network
(`unetseg.json` in the zip, which Keras does not read): its class map (names, colours, the
ignore rule), how it meets an image (working scale, tile, overlap, image bits) and its
encoder, so `unetseg predict` needs no params.

The evaluate stage writes the model as it scored it (`save_scored`: models/scored.keras,
the registry's model): the same network, its record joined by the inference settings
that made evaluate's masks (threshold, mirror average, largest component, the overlap of
tiles). The predict stage, `unetseg predict` and `unetseg export` apply that record
(options override it), so each produces the masks evaluate scored, and `inference.*`
stays out of training's params: changing it reruns evaluate and predict only. Scored in
int8, the file also holds the quantized network evaluate scored (OpenVINO's two files
under openvino_int8/), so what ships is what was scored (unetseg.model.runtimes).
"""

from __future__ import annotations

import json
import zipfile
from contextlib import contextmanager
from pathlib import Path

import keras

from unetseg.config.params import Inference
from unetseg.core.application import RESIZE, Application
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import DataError, UnetsegError
from unetseg.data.classes import ClassMap
from unetseg.model.runtimes import Int8Network

ALLOWED_PACKAGES = ("unetseg>",)  # registered objects of our own
RECORD = "unetseg.json"
INT8_DIR = "openvino_int8/"  # the quantized network evaluate scored, in OpenVINO's two files
INT8_XML, INT8_WEIGHTS = INT8_DIR + "model.xml", INT8_DIR + "model.bin"
NO_ENCODER = "none"  # model.encoder of the seed's plain U-Net, which the record leaves out


def _entries(node, trail="config"):
    """Every dict of a config tree, with a readable path to it."""
    if isinstance(node, dict):
        yield trail, node
        for key, value in node.items():
            yield from _entries(value, f"{trail}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _entries(value, f"{trail}[{index}]")


def check_model_file(path: Path) -> None:
    """Refuse a model file whose config would run code: Lambda layers, non-Keras modules."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a Keras 3 model file (.keras zip with config.json): {error}") from None
    for trail, entry in _entries(config):
        if entry.get("class_name") == "Lambda":
            raise DataError(f"{path}: refused: {trail} is a Lambda layer, whose Python code would run on load")
        module = entry.get("module")
        registered = entry.get("registered_name") or ""
        if isinstance(module, str) and not module.split(".")[0] == "keras" and not registered.startswith(ALLOWED_PACKAGES):
            raise DataError(
                f"{path}: refused: {trail} names {module}.{entry.get('class_name')}, outside Keras; "
                "loading it could run arbitrary code"
            )


def _renumber_shared_objects(config):
    """Number shared objects 0, 1, … in order of appearance instead of by their id() in memory."""
    numbers: dict[int, int] = {}
    for _, entry in _entries(config):
        if "shared_object_id" in entry:
            entry["shared_object_id"] = numbers.setdefault(entry["shared_object_id"], len(numbers))
    return config


def _float32_policies(node):
    """A config tree with every dtype policy (e.g. mixed_float16) replaced by plain float32."""
    if isinstance(node, dict):
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value) for value in node]
    return node


@contextmanager
def float32_policy():
    """Build layers in float32 whatever global policy a training in this process set."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_network(model: keras.Model) -> keras.Model:
    """The network alone, computing in float32 whatever policy it was trained under.

    Mixed precision is a training device's choice: a saved model run by evaluate or
    predict on a CPU must not compute in float16.
    """
    network = keras.Model(model.inputs, model.outputs, name=model.name)
    if all(layer.dtype_policy.name == "float32" for layer in network.layers):
        return network
    with float32_policy():
        copy = keras.Model.from_config(_float32_policies(network.get_config()))
    copy.set_weights(network.get_weights())
    return copy


def save_model(
    model: keras.Model, path: str | Path, classes: ClassMap | None = None, application: Application | None = None,
    encoder: str = NO_ENCODER,
) -> None:
    """Save the network alone (no optimizer, loss or metrics), in float32, byte-reproducibly, then
    rename it into place.

    Without a compile config the file holds only built-in layers, so plain
    `keras.saving.load_model` reads it in safe mode, on any backend, without unetseg.
    The save date, zip timestamps and memory addresses (Keras's shared-object ids)
    are replaced by fixed values, so the same weights give the same bytes, in any
    process, and DVC sees no change where there is none.
    """
    network = float32_network(model)
    record = None
    if classes is not None or application is not None or encoder != NO_ENCODER:
        record = {"classes": classes and classes.as_record(), "application": application and application.as_record(),
                  **({"encoder": encoder} if encoder != NO_ENCODER else {})}
    with atomic_output(path) as temporary:
        network.save(temporary)
        with zipfile.ZipFile(temporary) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
        _rewrite(members, temporary, record)


def _rewrite(members, path: Path, record: dict | None) -> None:
    """Write zip members with fixed timestamps, no save date and renumbered shared objects, and the record."""
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in members:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
            if info.filename != RECORD:
                archive.writestr(zipfile.ZipInfo(info.filename), data, compress_type=info.compress_type)
        if record:
            archive.writestr(zipfile.ZipInfo(RECORD), json.dumps(record, indent=2), compress_type=zipfile.ZIP_DEFLATED)


def save_scored(model_path: str | Path, path: str | Path, inference: Inference, application: Application,
                int8: Int8Network | None = None) -> None:
    """The model file with the inference settings evaluate applied (and, for a patch model, the overlap
    of `application`, the one evaluate tiled with) in its record, and the int8 network it scored if
    any: what everything after evaluate applies."""
    model_path = Path(model_path)
    record = _record(model_path)
    record["inference"] = {"threshold": inference.threshold, "tta_flip": inference.tta_flip,
                           "largest_component": inference.largest_component, "runtime": inference.runtime,
                           "precision": inference.precision,
                           **({"calibration": int8.calibration} if int8 is not None else {})}
    if application.tiled and record.get("application"):
        record["application"] = {**record["application"], "overlap": application.overlap}
    with zipfile.ZipFile(model_path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist() if not info.filename.startswith(INT8_DIR)]
    if int8 is not None:
        members += [(zipfile.ZipInfo(INT8_XML), int8.xml), (zipfile.ZipInfo(INT8_WEIGHTS), int8.weights)]
    with atomic_output(path) as temporary:
        _rewrite(members, temporary, record)


def model_int8(path: Path) -> Int8Network | None:
    """The int8 network evaluate quantized and scored, stored in models/scored.keras; None if none."""
    try:
        with zipfile.ZipFile(path) as archive:
            if INT8_XML not in archive.namelist():
                return None
            xml, weights = archive.read(INT8_XML), archive.read(INT8_WEIGHTS)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise DataError(f"{path}: cannot read its int8 network ({INT8_DIR}): {error}") from None
    return Int8Network(xml, weights, _record(path).get("inference", {}).get("calibration", {}))


def _record(path: Path) -> dict:
    """What the model file says about applying it; empty for the seed's binary, resized kind."""
    try:
        with zipfile.ZipFile(path) as archive:
            if RECORD not in archive.namelist():
                return {}
            record = json.loads(archive.read(RECORD))
        if not isinstance(record, dict):
            raise TypeError(f"a {type(record).__name__}, not a mapping")
        return record
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read {RECORD} (how to apply the model): {error}") from None


def model_classes(path: str | Path) -> ClassMap | None:
    """The class map a model file was trained on; None for a binary model."""
    try:
        return ClassMap.from_record(_record(Path(path)).get("classes"))
    except (KeyError, TypeError) as error:
        raise DataError(f"{path}: {RECORD} has no readable class map ({error!r})") from None


def model_encoder(path: str | Path) -> str:
    """The model.encoder a model file was trained with ("none" for the seed's U-Net)."""
    encoder = _record(Path(path)).get("encoder", NO_ENCODER)
    if not isinstance(encoder, str):
        raise DataError(f"{path}: {RECORD} has no readable encoder ({encoder!r})")
    return encoder


def model_inference(path: str | Path) -> Inference | None:
    """The inference settings evaluate scored a model file with (models/scored.keras); None for a file
    that evaluate did not write (the train stage's)."""
    record = _record(Path(path)).get("inference")
    if record is None:
        return None
    try:
        optional = {key: record[key] for key in ("runtime", "precision") if key in record}  # older files: Keras
        return Inference(record["threshold"], record["tta_flip"], record["largest_component"], **optional)
    except (KeyError, TypeError, ValueError, UnetsegError) as error:
        raise DataError(f"{path}: {RECORD} has no readable inference record ({error})") from None


def model_application(path: str | Path, model: keras.Model) -> Application:
    """How a model file is applied: its record (patches), else resized to its input size.

    A network that takes any size but has no record cannot say how it was trained to be applied.
    """
    record = _record(Path(path)).get("application")
    if record is not None:
        try:
            return Application.from_record(record)
        except (KeyError, TypeError) as error:
            raise DataError(f"{path}: {RECORD} has no readable application record ({error!r})") from None
    height, width = model.input_shape[1:3]
    if height is None or width is None:
        raise DataError(
            f"{path}: the network takes images of any size but the file has no application record "
            f"({RECORD}: working scale, tile, overlap); it was not written by unetseg's train stage"
        )
    return Application(RESIZE, (int(height), int(width)))


def load_model(path: str | Path) -> keras.Model:
    """A checked `.keras` file, loaded uncompiled in safe mode."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found; run the train stage")
    check_model_file(path)
    try:
        with float32_policy():
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as error:
        raise DataError(f"{path}: cannot load model: {error}") from None

"""Latency of each way to run a unetseg model on a CPU: Keras (unetseg predict), onnxruntime under
predict's own rules (predict --runtime onnx), and the files of `unetseg export` in their runtimes.

Every row maps decoded uint8 images to masks at their own size, side by side in one process:
- the default model (models/model.keras when present, else the default U-Net untrained) on
  the embedded sample's 288 x 192 images, in batches of 1 and 8;
- a 1918 x 1280 Carvana image (../shared/datasets/carvana-fullres) through the sliding window
  (the default U-Net untrained, 256 x 256 tiles, overlap 0.5: weights change no timing).
Prints images/s (median of the repeats, after a warm-up) and the CPU.

    python benchmarks/export.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
FULLRES = ROOT.parent / "shared" / "datasets" / "carvana-fullres" / "train"


def per_second(run, count: int, repeats: int) -> float:
    run()  # warm-up: graphs traced, sessions and tensors allocated
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def python_rule(network, application, batch: np.ndarray):
    """unetseg predict's own path from decoded images: unetseg.infer.inference, the network swapped."""
    from unetseg.config.params import Inference
    from unetseg.data.resize import resize_image
    from unetseg.model.applying import mask_at, probabilities, tiled_probabilities

    inference = Inference(0.5, False, False)
    if application.tiled:
        return [mask_at(tiled_probabilities(network, image, application, False), image.shape[:2], inference)
                for image in batch]
    small = np.stack([resize_image(image, application.size) for image in batch]).astype(np.float32) / 255.0
    return [mask_at(p, image.shape[:2], inference) for p, image in zip(probabilities(network, small, False), batch)]


def rows_for(model_path: Path, batches: dict, repeats: int, work: Path) -> list[tuple[str, str, float]]:
    from unetseg.export.formats import export_model
    from unetseg.export.runtime import Exported
    from unetseg.model.modelfile import load_model, model_application
    from unetseg.model.runtimes import OnnxNetwork

    network = load_model(model_path)
    application = model_application(model_path, network)
    onnx_network = OnnxNetwork(network)
    rows = []
    for name, batch in batches.items():
        rows.append(("keras (unetseg predict)", name, per_second(lambda: python_rule(network, application, batch),
                                                                  len(batch), repeats)))
        rows.append(("onnxruntime, predict's rules (--runtime onnx)", name,
                     per_second(lambda: python_rule(onnx_network, application, batch), len(batch), repeats)))
    for fmt, runtime in (("onnx", "onnxruntime"), ("tflite", "LiteRT"), ("savedmodel", "TensorFlow")):
        start = time.perf_counter()
        export_model(model_path, work / fmt, fmt)
        seconds = time.perf_counter() - start
        exported = Exported(work / fmt)
        for name, batch in batches.items():
            rows.append((f"export {fmt} ({runtime}; exported in {seconds:.1f} s)", name,
                         per_second(lambda: exported.masks(batch), len(batch), repeats)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from sliding_window import make_model

    from unetseg.data.decoding import list_images, read_image
    from unetseg.data.synthetic import generate_sample
    from unetseg.model.modelfile import save_model
    from unetseg.model.unet import build_unet

    cpu = next((line.partition(":")[2].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU {cpu}, {os.cpu_count()} cores; images/s, median of {args.repeats} after a warm-up")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = ROOT / "models" / "model.keras"
        if not model.is_file():
            model = tmp / "default.keras"
            save_model(build_unet((128, 128, 3), filters=16, batch_norm=True), model)
        sample = ROOT / "data" / "sample" / "train"
        if not sample.is_dir():
            sample = generate_sample(tmp / "sample", seed=0, num_objects=2, views_per_object=4, height=192,
                                     width=288, jpeg_quality=(60, 95)) / "train"
        images = [read_image(p) for p in list_images(sample)[:8]]
        rows = rows_for(model, {"default, batch 1": np.stack(images[:1]), "default, batch 8": np.stack(images)},
                        args.repeats, tmp / "default")
        if FULLRES.is_dir():
            tiled = tmp / "tiled.keras"
            make_model(tiled)
            image = read_image(list_images(FULLRES)[0])
            rows += rows_for(tiled, {f"{image.shape[1]}x{image.shape[0]}, sliding window": image[None]},
                             max(1, args.repeats // 2), tmp / "tiled")
        else:
            print(f"{FULLRES} absent: no sliding-window rows")
    width = max(len(r[0]) for r in rows)
    for runtime, case, rate in rows:
        print(f"{runtime:{width}}  {case:34} {rate:8.2f} images/s")


if __name__ == "__main__":
    main()

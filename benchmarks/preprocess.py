"""Preprocessing throughput and memory: the seed's way against ours, side by side in one run.

For N Carvana-size pairs (links to the real 1918x1280 pair of ../shared, or to pairs
generated at that size when it is absent, or a folder given), runs in separate
processes:
- seed: tf.io.decode_jpeg and tf.io.decode_gif at full size, tf.image.resize to
  128x128, one process (what the seed's tf.data pipeline does for every image, every epoch);
- ours: unetseg's preprocess (reduced-scale JPEG decode, Pillow GIF decode, resize,
  TFRecord shards), with one worker per core;
and prints pairs/s, the ratio, and the peak memory of each: the proportional set size
(PSS) of all its processes together, which counts pages that forked workers share once.

    python benchmarks/preprocess.py [--n 200 2000] [--folder DIR_WITH_train_AND_train_masks]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
FULLRES = ROOT.parent / "shared" / "datasets" / "carvana-fullres"

SEED = """
import sys, time, tensorflow as tf
images, masks = sys.argv[1], sys.argv[2]
files = sorted(tf.io.gfile.listdir(images))
def load(image, mask):
    img = tf.image.convert_image_dtype(tf.io.decode_jpeg(tf.io.read_file(image)), tf.float32)
    msk = tf.image.convert_image_dtype(tf.io.decode_gif(tf.io.read_file(mask))[0, :, :, :1], tf.float32)
    return tf.image.resize(img, (128, 128)), tf.image.resize(msk, (128, 128))
ds = tf.data.Dataset.from_tensor_slices(
    ([f"{images}/{f}" for f in files], [f"{masks}/{f[:-4]}_mask.gif" for f in files])).map(load)
start = time.perf_counter()
n = sum(1 for _ in ds)
print(n, time.perf_counter() - start)
"""

OURS = """
import sys, time
from pathlib import Path
from unetseg.data.pairing import pair_images_with_masks
from unetseg.config.params import Data
from unetseg.preprocess.preprocessing import write_tfrecords
from unetseg.core.application import RESIZE, Application
from unetseg.data.splitting import split_pairs
images, masks, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
data = Data(images, masks, "{stem}_mask.gif", "", 100_000_000, 0.05, False)
start = time.perf_counter()
pairs = split_pairs(pair_images_with_masks(images, masks, data.mask_pattern), 0.2, 0, r"^([^_]+)_")
n = sum(write_tfrecords(pairs, out, Application(RESIZE, (128, 128)), 4, data, workers=0).values())
print(n, time.perf_counter() - start)
"""


def run(code: str, *args) -> tuple[float, float, int, float]:
    """(seconds, peak PSS in MiB of the process tree, pairs, seconds after imports) of a Python snippet."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True)
    parent, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"benchmark step failed with status {process.returncode}")
    pairs, work = process.stdout.read().split()[-2:]
    return seconds, peak / 2**20, int(pairs), float(work)


def make_inputs(root: Path, n: int, folder: Path | None) -> None:
    """N pairs as links to a few real (or generated) 1918x1280 pairs."""
    source = folder or FULLRES
    if not (source / "train").is_dir():
        from unetseg.data.synthetic import generate_sample

        source = root / "generated"
        generate_sample(source, seed=0, num_objects=4, views_per_object=2, height=1280, width=1918,
                        jpeg_quality=(85, 95))
    images = sorted((source / "train").iterdir())
    (root / "train").mkdir()
    (root / "train_masks").mkdir()
    for i in range(n):
        image = images[i % len(images)]
        (root / "train" / f"car{i:05d}_01.jpg").symlink_to(image.resolve())
        (root / "train_masks" / f"car{i:05d}_01_mask.gif").symlink_to(
            (source / "train_masks" / f"{image.stem}_mask.gif").resolve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--folder", type=Path, help="a folder with train/ and train_masks/ (Carvana layout)")
    args = parser.parse_args()
    print(f"{psutil.cpu_count()} cores; pairs at 1918x1280 -> 128x128")
    for n in args.n:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_inputs(root, n, args.folder)
            seed_s, seed_rss, seed_n, seed_work = run(SEED, root / "train", root / "train_masks")
            ours_s, ours_rss, ours_n, ours_work = run(OURS, root / "train", root / "train_masks", root / "tfrecords")
        assert seed_n == ours_n == n
        print(f"N={n}: seed {n / seed_work:.1f} pairs/s ({n / seed_s:.1f} with start-up), peak memory "
              f"{seed_rss:.0f} MiB; ours {n / ours_work:.1f} pairs/s ({n / ours_s:.1f} with start-up), peak memory "
              f"{ours_rss:.0f} MiB; ratio {seed_work / ours_work:.2f}x ({seed_s / ours_s:.2f}x with start-up)",
              flush=True)


if __name__ == "__main__":
    main()

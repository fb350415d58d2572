"""Decode, resize to the model size (or, with patches, to the working scale) and write sharded
TFRecords per split.

In: params preprocess.*, patches.enabled, patches.scale, data.* (the file rules), classes.*; the pairs table and the files it names.
Out: --out folder of <split>-NNNNN-of-NNNNN.tfrecord shards and manifest.json.
"""

import sys

from unetseg.config.loading import load_params
from unetseg.core.application import Application
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.data.classes import ClassMap
from unetseg.data.pairs_table import read_pairs
from unetseg.preprocess.preprocessing import write_tfrecords


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    pairs = read_pairs(args.pairs)
    with atomic_output(args.out) as out:
        counts = write_tfrecords(
            pairs, out, Application.for_data(params), params.preprocess.num_shards, params.data,
            workers=params.base.workers, progress=True, classes=ClassMap.from_params(params.classes),
        )
    print(f"{args.out}: {counts}")


if __name__ == "__main__":
    sys.exit(main())

"""Train the U-Net on the train shards, validating on the validation shards each epoch.

In: params base.seed, preprocess.image_size, patches.* (the overlap only as the model file's default),
augment.*, model.*, train.*, classes.*; the TFRecords.
Out: --model (.keras, network only); --live folder of dvclive curves and final metrics.
Kept between runs: --backup, the state of an unfinished training, resumed by the next run.
With train.strategy multi_worker, every worker runs this script with its own TF_CONFIG;
the chief alone writes the outputs (see unetseg.train.distribute).
"""

import sys

from unetseg.config.loading import load_params
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.train.training import train


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tfrecords", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--live", required=True)
    parser.add_argument("--backup", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    logs = train(params, args.tfrecords, args.model, args.live, args.backup)
    print("last epoch: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))


if __name__ == "__main__":
    sys.exit(main())

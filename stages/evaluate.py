"""Score the model on the validation split, with trivial baselines beside it.

In: params evaluate.*; the model; the TFRecords.
Out: --metrics JSON (see unetseg.evaluation for what each number is); --per-image CSV.
"""

import argparse
import sys

from unetseg.errors import reports_errors
from unetseg.evaluation import evaluate_model, write_metrics
from unetseg.params import load_params


@reports_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tfrecords", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--per-image", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    metrics, per_image = evaluate_model(args.model, args.tfrecords, params.evaluate.threshold)
    write_metrics(metrics, per_image, args.metrics, args.per_image)
    print(f"{args.metrics}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    sys.exit(main())

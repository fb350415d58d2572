"""Predict masks for the validation images, at each image's original size, and a montage.

In: params inference.*, predict.*; the model; the pairs table and its files.
Out: --out folder with masks/<id>.png (0/255) and overlays/<id>.jpg; --montage PNG, rows of
mask | image | prediction at the model's size.
"""

import argparse
import sys

from unetseg.errors import reports_errors
from unetseg.inference import predict_validation
from unetseg.params import load_params


@reports_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--montage", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    count = predict_validation(
        args.model, args.pairs, args.out, args.montage, params.inference, params.predict.montage_rows
    )
    print(f"{args.out}: {count} masks; {args.montage}")


if __name__ == "__main__":
    sys.exit(main())

"""Predict masks for the validation images, at each image's original size, and a montage.

In: params predict.*, data.* (the file rules), classes.*, preprocess.image_size or patches.*
(checked against the model); the model as the evaluate stage scored it (models/scored.keras:
its inference settings are applied, so these are the masks evaluate scored); the pairs table
and its files.
Out: --out folder with masks/<stem>.png (0/255, or class indices in a palette PNG) and
overlays/<stem>.jpg, named after each image file; --montage PNG, rows of mask | image | prediction at the model's size.
"""

import sys

from unetseg.config.loading import load_params
from unetseg.core.application import Application
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.data.classes import ClassMap
from unetseg.infer.prediction import predict_validation


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--montage", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    count = predict_validation(
        args.model, args.pairs, args.out, args.montage, params.data, params.predict.montage_rows,
        ClassMap.from_params(params.classes), Application.from_params(params, with_overlap=False), params.model.encoder,
    )
    print(f"{args.out}: {count} masks; {args.montage}")


if __name__ == "__main__":
    sys.exit(main())

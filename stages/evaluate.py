"""Score the model on the validation split, at the model's and the original resolution.

In: params inference.*, evaluate.*, base.seed (int8's calibration sample), data.* (the mask rules), classes.*, preprocess.image_size or
patches.* (checked against the model and the TFRecords); the model; the TFRecords;
the pairs table and its masks.
Out: --metrics JSON (see unetseg.evaluate.metrics and docs/reference/outputs.md for what each number is);
--per-image CSV; --plots folder of curves (CSV); --gallery PNG of the worst and best images;
--confusion CSV of pixel counts (true class by predicted class) and its row-normalised PNG beside;
--scored: the model file with the inference settings it was scored with, which the predict stage,
`unetseg predict`, `unetseg export` and the model registry apply (unetseg.model.modelfile).
"""

import sys

from unetseg.config.loading import load_params
from unetseg.core.application import Application
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.data.classes import ClassMap
from unetseg.evaluate.evaluation import evaluate_model, write_evaluation
from unetseg.model.modelfile import save_scored


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--tfrecords", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--per-image", required=True)
    parser.add_argument("--plots", required=True)
    parser.add_argument("--gallery", required=True)
    parser.add_argument("--confusion", required=True, help="CSV of pixel counts; a PNG of it is written beside")
    parser.add_argument("--scored", required=True, help="the model file with the inference settings scored")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    application = Application.from_params(params)
    evaluation = evaluate_model(
        args.model, args.tfrecords, args.pairs, params.inference, params.data, params.evaluate,
        ClassMap.from_params(params.classes), application, params.model.encoder, params.base.seed,
    )
    write_evaluation(evaluation, args.metrics, args.per_image, args.plots, args.gallery, args.confusion,
                     extra=(args.scored, lambda path: save_scored(args.model, path, params.inference, application,
                                                                  evaluation.int8)))
    if evaluation.int8 is not None:
        calibration = evaluation.int8.calibration
        print(f"int8 network scored: calibrated on {calibration.get('images') or calibration.get('tiles')} "
              f"training {'images' if 'images' in calibration else 'tiles'} (seed {calibration['seed']})"
              + (", from the cache" if evaluation.int8_cached else ""))
    print(f"{args.metrics}: " + ", ".join(
        f"{k} {v:.4f}" for k, v in evaluation.metrics.items() if not isinstance(v, (dict, str))
    ))


if __name__ == "__main__":
    sys.exit(main())

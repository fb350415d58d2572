"""The `unetseg` command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unetseg.compare.command import add_compare_parser
from unetseg.compare.spread import add_spread_parser
from unetseg.config.checks import argument, default
from unetseg.config.params import THRESHOLD, TTA_FLIP, Base, Data, Inference, Patches
from unetseg.core.errors import ArgumentParser, UsageError, reports_errors


def _preset(args) -> int:
    from unetseg.config.presets import apply_preset

    changed = apply_preset(args.params, args.name)
    for key, (old, new) in changed.items():
        print(f"{key}: {old!r} -> {new!r}")
    print(f"{args.params}: preset {args.name!r} applied ({len(changed)} value(s) changed)")
    return 0


def _mask_value(text: str):
    """A mask value on the command line: a level 0..65535 (15), or a colour [r,g,b] of 0..255 ([0,0,0])."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    level = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535
    colour = isinstance(value, list) and len(value) == 3 and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    if not (level or colour):
        raise argparse.ArgumentTypeError(f"a mask value is a level 0..65535 (15) or a colour [r,g,b] of 0..255 "
                                         f"([0,0,0]), got {text!r}")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and value < 10_000):
        raise argparse.ArgumentTypeError(f"a number of minutes above 0, got {text!r}")
    return value


def _classes(args) -> int:
    from unetseg.config.presets import set_params
    from unetseg.data.classes import classes_from_table

    changed = set_params(args.params, {"classes": classes_from_table(args.table, args.ignore)})
    for key, (old, new) in changed.items():
        print(f"{key}: {old!r} -> {new!r}")
    print(f"{args.params}: classes from {args.table} ({len(changed)} key(s) changed)")
    return 0


def _check_data(args) -> int:
    from unetseg.config.loading import load_params
    from unetseg.core.atomic import atomic_output
    from unetseg.data.checking import check_data, class_census
    from unetseg.data.classes import ClassMap

    data = Data(str(args.images_dir), str(args.masks_dir), args.mask_pattern, args.id_pattern,
                args.max_pixels, args.max_nonbinary_fraction, args.resize_masks,
                args.instance_masks, args.image_bits)  # checked as params are
    classes = ClassMap.from_params(load_params(args.classes_from).classes) if args.classes_from else None
    check = check_data(args.images_dir, args.masks_dir, data, args.workers, classes)
    summary, problems = check.summary, check.problems
    if classes is not None and check.class_pixels:
        summary.update(class_census(check.class_pixels, dict.fromkeys(check.class_pixels, "all"), classes))
    text = json.dumps(summary, indent=2)
    if args.summary:
        with atomic_output(args.summary) as out:
            out.write_text(text + "\n")
    print(text)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("error: the dataset has problems (above)", file=sys.stderr)
        return 1
    return 0


def _plan(args) -> int:
    from unetseg.data.naming import Naming
    from unetseg.plan.planning import PLAN_FILE, format_plan, make_plan, write_plan

    naming = None
    if args.mask_pattern:  # checked as params are
        data = Data(str(args.images_dir), str(args.masks_dir), args.mask_pattern, args.id_pattern or "")
        naming = Naming(data.mask_pattern, data.id_pattern)
    elif args.id_pattern:
        raise UsageError("unetseg plan: --id-pattern needs --mask-pattern (the mask name it fills)")
    plan = make_plan(args.images_dir, args.masks_dir, args.params, args.minutes, args.ignore, naming)
    print(format_plan(plan))
    changed = write_plan(plan, args.params)
    print(f"{args.params}: {len(changed)} key(s) changed; the decisions and the measurements behind them in "
          f"{Path(args.params).with_name(PLAN_FILE)}. Next: dvc repro (dvc params diff shows what changed)")
    return 0


def _export(args) -> int:
    from unetseg.export.formats import export_model

    path = export_model(args.model, args.out, args.format, _inference_options(args), args.overlap, args.int8)
    print(f"{path}: {args.format}; {args.out}/export.json says what it holds")
    return 0


def _predict(args) -> int:
    from unetseg.infer.prediction import predict_folder

    problems = predict_folder(
        args.model, args.input_dir, args.output_dir, _inference_options(args), rle_path=args.rle,
        keep_going=args.keep_going, overlays=not args.no_overlays, overlap=args.overlap,
    )
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} file(s) could not be predicted", file=sys.stderr)
        return 1
    print(f"{args.output_dir}: masks/ (PNG at each image's size)" + ("" if args.no_overlays else ", overlays/"))
    return 0


def _inference_options(args) -> dict:
    """The inference settings given on the command line; the others are the model file's."""
    return {"threshold": args.threshold, "tta_flip": args.tta_flip,
            "largest_component": getattr(args, "largest_component", None),
            "runtime": getattr(args, "runtime", None), "precision": getattr(args, "precision", None)}


SCORED = "the model file's: what evaluate scored (models/scored.keras), else"


def _add_inference_options(parser, largest_component: bool = True) -> None:
    parser.add_argument("--threshold", type=argument(Inference, "threshold"),
                        help=f"foreground above this probability (binary models; default: {SCORED} {THRESHOLD})")
    parser.add_argument("--tta-flip", action=argparse.BooleanOptionalAction,
                        help=f"average with the mirror image's prediction (default: {SCORED} "
                             f"{'on' if TTA_FLIP else 'off'})")
    if largest_component:
        parser.add_argument("--largest-component", action=argparse.BooleanOptionalAction,
                            help=f"keep only the largest region (binary models; default: {SCORED} off)")


def build_parser() -> ArgumentParser:
    """The `unetseg` parser, every subcommand on it: what `main` parses and docs/reference/cli.md shows."""
    parser = ArgumentParser(prog="unetseg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-data", help="decode every image and mask as the pipeline will; list every problem",
        description="Pair and decode every file by the pipeline's rules (docs/guides/your-data.md) and print a "
        "summary (formats, modes, sizes, foreground fractions, non-binary pixels). Every problem is "
        "listed; the exit status is 1 if there is any.",
    )
    check.add_argument("images_dir")
    check.add_argument("masks_dir")
    check.add_argument("--mask-pattern", default=default(Data, "mask_pattern"), help="mask name for image <stem>.<ext>")
    check.add_argument("--id-pattern", default=default(Data, "id_pattern"),
                       help="regex whose first group is {id} in the mask pattern")
    check.add_argument("--max-pixels", type=argument(Data, "max_pixels"), default=default(Data, "max_pixels"))
    check.add_argument("--max-nonbinary-fraction", type=argument(Data, "max_nonbinary_fraction"),
                       default=default(Data, "max_nonbinary_fraction"))
    check.add_argument("--resize-masks", action="store_true", help="resize masks of another size (nearest)")
    check.add_argument("--instance-masks", action="store_true",
                       help="masks of object ids (instance labels): every nonzero pixel an object")
    check.add_argument("--image-bits", type=argument(Data, "image_bits"), default=default(Data, "image_bits"),
                       help="the levels of 16-bit images (12: a 12-bit camera's)")
    check.add_argument("--workers", type=argument(Base, "workers"), default=default(Base, "workers"),
                       help="decoding processes; 0: one per core")
    check.add_argument("--summary", metavar="JSON", help="also write the summary to this file")
    check.add_argument("--classes-from", metavar="PARAMS",
                       help="read masks by the class map (classes.*) of this params file")
    check.set_defaults(run=_check_data)
    predict = commands.add_parser(
        "predict", help="masks for every image of a folder, at each image's size",
        description="Write OUTPUT_DIR/masks/<stem>.png (0/255; for a model of several classes, class "
        "indices in a palette PNG of the class colours) and OUTPUT_DIR/overlays/<stem>.jpg "
        "for every image in INPUT_DIR (two images with one stem, a.jpg and a.png, are refused). "
        "An unreadable file stops the run, or with --keep-going is skipped and listed; either way "
        "the exit status is then 1.",
    )
    predict.add_argument("model", help="a .keras file: models/scored.keras (as evaluate scored it) or the train stage's")
    predict.add_argument("input_dir")
    predict.add_argument("output_dir")
    _add_inference_options(predict)
    predict.add_argument("--rle", metavar="CSV", help="also write a Kaggle Carvana submission (img,rle_mask)")
    predict.add_argument("--keep-going", action="store_true", help="skip unreadable files, list them at the end")
    predict.add_argument("--no-overlays", action="store_true")
    predict.add_argument("--overlap", type=argument(Patches, "overlap"),
                         help="tiles' overlap for a model trained on patches (default: the model file's)")
    predict.add_argument("--runtime", choices=["keras", "onnx", "openvino"],
                         help="what runs the network: Keras, onnxruntime (the [export] extra) or OpenVINO; "
                         "default: the model file's (inference.runtime evaluate scored with), else keras")
    predict.add_argument("--precision", choices=["float32", "int8"],
                         help="int8: the quantized network evaluate scored (OpenVINO; inference.precision int8); "
                         "default: the model file's, else float32")
    predict.set_defaults(run=_predict)
    export = commands.add_parser(
        "export", help="a model file to a SavedModel, ONNX, TFLite or OpenVINO file that maps images to masks",
        description="Write the new folder OUT: the exported file and export.json (what it holds, and what "
        "it leaves to its caller). A model trained on resized images exports whole: uint8 RGB images of "
        "any size in, masks at their size out, by predict's rules. A model trained on patches exports "
        "its tile network; export.json says how to cover an image (docs/guides/predicting.md).",
    )
    export.add_argument("model", help="a .keras file: models/scored.keras (as evaluate scored it) or the train stage's")
    export.add_argument("out", help="a new folder")
    export.add_argument("--format", required=True, choices=["savedmodel", "onnx", "tflite", "openvino"])
    export.add_argument("--int8", action="store_true", help="OpenVINO: the int8 network evaluate quantized and "
                        "scored (the model file must be evaluate's, scored with inference.precision int8)")
    _add_inference_options(export)
    export.add_argument("--overlap", type=argument(Patches, "overlap"),
                        help="tiles' overlap for a model trained on patches (default: the model file's)")
    export.set_defaults(run=_export)
    plan = commands.add_parser(
        "plan", help="measure two folders and this machine; write the params that train on them",
        description="Pair the files by their names, read every pair once (mask encoding, class census, sizes, "
        "what resizing costs the masks, colour), time the planned network on this machine, and write the keys "
        "it decides into the params file (comments and every other key kept) and plan.json beside it: each "
        "decision with the measurement behind it. Then `dvc repro` trains, in about --minutes.",
    )
    plan.add_argument("images_dir")
    plan.add_argument("masks_dir")
    plan.add_argument("--minutes", type=_minutes, default=20.0,
                      help="time for the whole `dvc repro` on this machine (default 20)")
    plan.add_argument("--ignore", action="append", default=[], metavar="VALUE", type=_mask_value,
                      help="a mask value that marks void pixels: 15, or a colour '[0,0,0]'; repeat for several")
    plan.add_argument("--mask-pattern", help="pair by this data.mask_pattern instead of finding it")
    plan.add_argument("--id-pattern", help="with --mask-pattern: data.id_pattern")
    plan.add_argument("--params", default="params.yaml")
    plan.set_defaults(run=_plan)
    classes = commands.add_parser(
        "classes", help="set classes.* in params.yaml from a dataset's class table (CSV)",
        description="Read a class table, value,name (label maps, e.g. Stanford Background's classes.csv) or "
        "name,r,g,b (colour masks, e.g. CamVid's class_dict.csv), and write classes.names, values, ignore and "
        "masks into the params file. Rows whose value is given with --ignore become ignored values, not classes.",
    )
    classes.add_argument("table", help="CSV with columns value,name or name,r,g,b")
    classes.add_argument("--ignore", action="append", default=[], metavar="VALUE", type=_mask_value,
                         help="a mask value to ignore: 15, or a colour '[0,0,0]'; repeat for several")
    classes.add_argument("--params", default="params.yaml")
    classes.set_defaults(run=_classes)
    add_compare_parser(commands)
    add_spread_parser(commands)
    preset = commands.add_parser("preset", help="set a named group of params in params.yaml")
    preset.add_argument("name", help="preset name, e.g. 'seed' for the seed post's exact settings")
    preset.add_argument("--params", default="params.yaml")
    preset.set_defaults(run=_preset)
    return parser


@reports_errors
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

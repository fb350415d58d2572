"""Pair images with masks, check every file, and split train/validation by group.

In: params base.seed, data.*, classes.*, split.*; the images and masks folders.
Out: --out pairs table (CSV: id, image, mask, group, split); --summary counts per side
(JSON); --data-summary formats, modes, sizes, foreground fractions, non-binary pixels, or
with classes the census per split and class (JSON).
Any problem (unpaired file, unreadable or unusable file) stops the stage with all of
them listed, and nothing is written.
"""

import json
import sys

from unetseg.config.loading import load_params
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.data.checking import check_data, class_census, raise_problems
from unetseg.data.classes import ClassMap
from unetseg.data.splitting import split_pairs, split_summary


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--data-summary", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    classes = ClassMap.from_params(params.classes)
    check = check_data(params.data.images_dir, params.data.masks_dir, params.data, params.base.workers, classes)
    raise_problems(check.problems)
    table = split_pairs(check.pairs, params.split.val_fraction, params.base.seed, params.split.group_pattern,
                        params.split.groups)
    summary = split_summary(table)
    data_summary = check.summary
    if classes is not None:
        data_summary.update(class_census(check.class_pixels, dict(zip(table["id"], table["split"])), classes))
    with atomic_output(args.out) as out:
        table.to_csv(out, index=False)
    with atomic_output(args.summary) as out:
        out.write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_output(args.data_summary) as out:
        out.write_text(json.dumps(data_summary, indent=2) + "\n")
    print(f"{args.out}: {json.dumps(summary)}")


if __name__ == "__main__":
    sys.exit(main())

"""Generate the embedded default sample (Carvana layout), offline and deterministic.

In: params base.seed, generate.*. Out: --out/train/<object>_<view>.jpg and
--out/train_masks/<object>_<view>_mask.gif.
"""

import sys
from dataclasses import asdict

from unetseg.config.loading import load_params
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import ArgumentParser, reports_errors
from unetseg.data.synthetic import generate_sample


@reports_errors
def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    with atomic_output(args.out) as out:
        count = generate_sample(out, params.base.seed, **asdict(params.generate))
    print(f"{args.out}: {count} image/mask pairs")


if __name__ == "__main__":
    sys.exit(main())

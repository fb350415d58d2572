"""The `unetseg` command."""

from __future__ import annotations

import argparse
import sys

from unetseg.errors import reports_errors


def _preset(args) -> None:
    from unetseg.presets import apply_preset

    changed = apply_preset(args.params, args.name)
    for key, (old, new) in changed.items():
        print(f"{key}: {old!r} -> {new!r}")
    print(f"{args.params}: preset {args.name!r} applied ({len(changed)} value(s) changed)")


@reports_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="unetseg", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    preset = commands.add_parser("preset", help="set a named group of params in params.yaml")
    preset.add_argument("name", help="preset name, e.g. 'seed' for the seed post's exact settings")
    preset.add_argument("--params", default="params.yaml")
    preset.set_defaults(run=_preset)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

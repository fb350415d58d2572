"""Reference pages written from the code, so that they cannot drift from it: docs/reference/params.md
from the params schema (unetseg.config.params) and params.yaml's values and comments, and
docs/reference/cli.md from the `unetseg` argparse parser.

    python -m unetseg.reference docs           # (re)write the pages
    python -m unetseg.reference docs --check   # exit 1 naming each stale page; writes nothing

tests/unit/test_reference.py fails when a committed page is not what this writes now.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Literal

from ruamel.yaml import YAML

from unetseg.cli import build_parser
from unetseg.config.loading import load_params
from unetseg.config.params import Params
from unetseg.core.errors import reports_errors

REGENERATE = "python -m unetseg.reference docs"
PARAMS_PAGE = "reference/params.md"
CLI_PAGE = "reference/cli.md"
USAGE_WIDTH = 88  # a fixed width, not the terminal's: the page is the same on every machine
BOUND_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def generated_notice(source: str) -> str:
    """The page's first line: edits by hand would be lost at the next regeneration, so say so."""
    return f"Generated from {source} by `{REGENERATE}` (run from the project root): do not edit by hand."


# Markdown: text shown as written, in tables and out


def markdown(text: str) -> str:
    """Text as Markdown that renders as written: `code spans` kept, every other special character escaped."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code spans at all
        return _escaped(text)
    return "".join(code(part) if index % 2 else _escaped(part) for index, part in enumerate(parts))


def code(text: str) -> str:
    """A code span; escaped text instead where it holds a `|`, which GFM and Python-Markdown tables read
    differently inside code spans."""
    return f"`{text}`" if text and "|" not in text and "`" not in text else _escaped(text)


def _escaped(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for character in "\\`*_[]|":
        text = text.replace(character, "\\" + character)
    return text


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table of cells already in Markdown (one line each)."""
    lines = [_row(header), _row(tuple("---" for _ in header))]
    return lines + [_row(row) for row in rows]


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(" ".join(cell.split()) for cell in cells) + " |"


# params.md


def comment_text(token) -> str:
    """A ruamel comment token's text: its `#` lines up to the first blank line, joined. The lines under a
    key's own comment continue it; a blank line ends it (what follows belongs to what follows)."""
    if token is None:
        return ""
    lines = []
    for line in token.value.split("\n"):
        line = line.strip()
        if not line.startswith("#"):
            if lines:
                break
            continue
        lines.append(line[1:].strip())
    return " ".join(lines)


def line_comment(mapping, key: str) -> str:
    """The comment on `key`'s line (and its continuation lines) in a round-trip loaded mapping."""
    tokens = mapping.ca.items.get(key)
    return comment_text(tokens[2]) if tokens and len(tokens) > 2 else ""


def shown_value(value) -> str:
    """A params.yaml value as YAML writes it, short: `true`, `0.001`, `""`, `[128, 128]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(shown_value(item) for item in value) + "]"
    raise TypeError(f"no way to show params value {value!r}")


def type_name(hint) -> str:
    """A field's type hint for people: `int`, `list of 2 int`, `list of str`, `str` (for choices)."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return " or ".join(sorted({type(choice).__name__ for choice in arguments}))
    if origin is tuple and arguments[-1] is Ellipsis:
        return f"list of {type_name(arguments[0])}"
    if origin is tuple:
        names = [type_name(argument) for argument in arguments]
        return f"list of {len(names)} {names[0]}" if len(set(names)) == 1 else f"list of {', '.join(names)}"
    if hint is object:
        return "any"  # a value whose shape depends on other keys: the section checks it
    return hint.__name__


def allowed(hint, bounds: typing.Mapping) -> str:
    """What a field accepts, from its type hint and bounds metadata, in Markdown."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    limits = ", ".join(code(f"{BOUND_SYMBOLS[name]} {bound}") for name, bound in bounds.items())
    if origin is Literal:
        return "one of " + ", ".join(code(shown_value(choice)) for choice in arguments)
    if origin is tuple:
        count = "any number of values" if arguments[-1] is Ellipsis else f"{len(arguments)} values"
        return f"{count}, each {limits}" if limits else count
    if hint is bool:
        return "true/false"
    if hint is object:
        return "see what it is; checked with the section's other keys"
    return limits


def section_rows(section_class, mapping) -> list[tuple[str, ...]]:
    """One row per key of a section, in params.yaml's order."""
    hints = typing.get_type_hints(section_class)
    bounds = {f.name: f.metadata for f in dataclasses.fields(section_class)}
    return [(code(key), markdown(type_name(hints[key])), code(shown_value(value)),
             allowed(hints[key], bounds[key]), markdown(line_comment(mapping, key)))
            for key, value in mapping.items()]


def params_page(params_path: str | Path) -> str:
    """docs/reference/params.md: every params.yaml section and key, with the schema's type and range."""
    load_params(params_path)  # the schema's sections and keys, and no others, or a ParamsError naming them
    document = YAML().load(Path(params_path).read_text())
    sections = typing.get_type_hints(Params)
    lines = [generated_notice("params.yaml and unetseg.config.params"), "", "# Params", "",
             markdown("Every key of params.yaml is required and checked when the file is read "
                      "(unetseg.config). Default is params.yaml's value; what it is, the comment on its line "
                      "there."), ""]
    for name, mapping in document.items():
        lines += [f"## {name}", ""]
        about = line_comment(document, name)
        if about:
            lines += [markdown(about), ""]
        header = ("key", "type", "default", "allowed", "what it is")
        lines += table(header, section_rows(sections[name], mapping)) + [""]
    return "\n".join(lines)


# cli.md


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser, by name, in the order `unetseg --help` lists them."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def subcommand_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as `unetseg --help` shows it."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {choice.dest: choice.help or "" for choice in commands._choices_actions}


def usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(prog=parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def described(parser: argparse.ArgumentParser, text: str | None) -> str:
    """A description as argparse prints it: %(prog)s filled in, and only then is `%` special."""
    text = text or ""
    return text % {"prog": parser.prog} if "%(prog)" in text else text


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """An argument's help as `--help` prints it (%(default)s and the like filled in)."""
    if not action.help:
        return ""
    return parser._get_formatter()._expand_help(action)


def shown_default(action: argparse.Action) -> str:
    if action.required and action.option_strings:
        return "required"
    if action.default in (None, argparse.SUPPRESS) or action.default == []:
        return ""
    return code(shown_value(action.default))


def argument_rows(parser: argparse.ArgumentParser) -> list[tuple[str, ...]]:
    """One row per argument and option of a subcommand, -h/--help left out."""
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(code(name) for name in action.option_strings) or code(action.metavar or action.dest)
        choices = ", ".join(code(str(choice)) for choice in action.choices or ())
        rows.append((names, shown_default(action), choices, markdown(help_text(parser, action))))
    return rows


def cli_page(parser: argparse.ArgumentParser) -> str:
    """docs/reference/cli.md: every `unetseg` subcommand, its usage, and its arguments and options."""
    helps = subcommand_help(parser)
    lines = [generated_notice("the unetseg.cli parser"), "", f"# {parser.prog}", "",
             markdown(described(parser, parser.description)), "",
             *table(("command", "what it does"), [(code(name), markdown(helps.get(name, "")))
                                                  for name in subcommands(parser)]), ""]
    for name, command in subcommands(parser).items():
        lines += [f"## {parser.prog} {name}", "", markdown(helps.get(name, "")), ""]
        description = described(command, command.description)
        if description:
            lines += [markdown(description), ""]
        lines += ["```text", usage(command), "```", ""]
        lines += table(("argument", "default", "choices", "help"), argument_rows(command)) + [""]
    return "\n".join(lines)


# the pages, written or checked


def pages(params_path: str | Path, parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every reference page, by its path under the docs folder."""
    return {PARAMS_PAGE: params_page(params_path), CLI_PAGE: cli_page(parser)}


def stale_pages(docs_dir: str | Path, expected: dict[str, str]) -> list[str]:
    """The pages under `docs_dir` that are missing or differ from `expected`."""
    stale = []
    for page, text in expected.items():
        path = Path(docs_dir) / page
        if not path.is_file() or path.read_text() != text:
            stale.append(page)
    return stale


def write_pages(docs_dir: str | Path, expected: dict[str, str]) -> None:
    for page, text in expected.items():
        path = Path(docs_dir) / page
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, newline="\n")


@reports_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unetseg.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("docs_dir", help="the docs folder: pages go to DOCS_DIR/reference/")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale page")
    parser.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    args = parser.parse_args(argv)
    expected = pages(args.params, build_parser())
    if args.check:
        stale = stale_pages(args.docs_dir, expected)
        for page in stale:
            print(f"{Path(args.docs_dir) / page}: stale; regenerate with: python -m unetseg.reference "
                  f"{args.docs_dir}", file=sys.stderr)
        return 1 if stale else 0
    write_pages(args.docs_dir, expected)
    for page in expected:
        print(Path(args.docs_dir) / page)
    return 0


if __name__ == "__main__":
    sys.exit(main())

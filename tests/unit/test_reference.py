"""docs/reference/ is written from the code (unetseg.reference): the committed pages must be what the
generator writes now, and a change to the schema, params.yaml or the parser must make them stale."""

import dataclasses
import re
import typing

import pytest

from conftest import ROOT
from unetseg.cli import build_parser
from unetseg.config.checks import ParamsError
from unetseg.config.params import Params
from unetseg.reference import CLI_PAGE, PARAMS_PAGE, REGENERATE, main, pages, stale_pages, subcommands

DOCS = ROOT / "docs"
PARAMS = ROOT / "params.yaml"


@pytest.fixture(scope="module")
def current():
    return pages(PARAMS, build_parser())


def test_the_committed_pages_are_what_the_generator_writes(current):
    stale = stale_pages(DOCS, current)
    assert not stale, f"stale: {', '.join(f'docs/{page}' for page in stale)}; regenerate with `{REGENERATE}`"


def test_the_pages_are_the_same_wherever_they_are_written(current, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # argparse wraps usage by the terminal's width; the pages must not
    assert pages(PARAMS, build_parser()) == current
    for text in current.values():
        assert str(ROOT) not in text and str(tmp_path) not in text
        assert text.splitlines()[0].startswith("Generated from") and REGENERATE in text.splitlines()[0]


def test_a_changed_comment_in_params_yaml_makes_the_params_page_stale(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    original = PARAMS.read_text()
    params.write_text(original.replace("# the seed's 80/20", "# four in five images train"))
    assert params.read_text() != original
    assert stale_pages(DOCS, pages(params, build_parser())) == [PARAMS_PAGE]
    assert "four in five images train" in pages(params, build_parser())[PARAMS_PAGE]

    committed = (DOCS / PARAMS_PAGE).read_text()
    assert main(["--check", "--params", str(params), str(DOCS)]) == 1
    assert (DOCS / PARAMS_PAGE).read_text() == committed  # --check writes nothing
    (line,) = capsys.readouterr().err.splitlines()
    assert PARAMS_PAGE in line and "python -m unetseg.reference" in line


def test_check_passes_on_what_it_writes_and_names_each_missing_page(tmp_path, capsys):
    assert main(["--check", "--params", str(PARAMS), str(tmp_path)]) == 1
    assert len(capsys.readouterr().err.splitlines()) == 2
    assert main(["--params", str(PARAMS), str(tmp_path)]) == 0
    assert main(["--check", "--params", str(PARAMS), str(tmp_path)]) == 0
    assert (tmp_path / CLI_PAGE).read_text() == (DOCS / CLI_PAGE).read_text()


def test_a_new_option_makes_the_cli_page_stale():
    parser = build_parser()
    subcommands(parser)["predict"].add_argument("--gamma", type=float, default=1.0, help="brighten | darken")
    changed = pages(PARAMS, parser)
    assert stale_pages(DOCS, changed) == [CLI_PAGE]
    assert "| `--gamma` | `1.0` |  | brighten \\| darken |" in changed[CLI_PAGE]


@pytest.mark.parametrize("change", ["add", "remove"])
def test_params_yaml_and_the_schema_must_have_the_same_keys(tmp_path, change):
    text = PARAMS.read_text()
    if change == "add":
        text = text.replace("  montage_rows: 4", "  montage_rows: 4\n  montage_columns: 3")
    else:
        text = re.sub(r"(?m)^  reduce_lr_factor: .*\n", "", text)
    params = tmp_path / "params.yaml"
    params.write_text(text)
    with pytest.raises(ParamsError, match="unknown predict.montage_columns" if change == "add"
                       else "missing train.reduce_lr_factor"):
        pages(params, build_parser())


def _sections(page: str) -> dict[str, str]:
    """The page's text under each `## name` heading."""
    parts = page.split("\n## ")[1:]
    return {part.split("\n", 1)[0]: part for part in parts}


def test_every_params_key_is_on_the_params_page(current):
    sections = _sections(current[PARAMS_PAGE])
    for section in dataclasses.fields(Params):
        assert section.name in sections, f"no section {section.name} in {PARAMS_PAGE}"
        for key in dataclasses.fields(typing.get_type_hints(Params)[section.name]):
            row = f"\n| `{key.name}` |"
            assert row in sections[section.name], f"{section.name}.{key.name} not in {PARAMS_PAGE}"


def test_every_subcommand_and_option_is_on_the_cli_page(current):
    sections = _sections(current[CLI_PAGE])
    for name, command in subcommands(build_parser()).items():
        section = sections[f"unetseg {name}"]
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, f"unetseg {name} {option} not in {CLI_PAGE}"
            if not action.option_strings:
                assert f"| `{action.dest}` |" in section, f"unetseg {name} {action.dest} not in {CLI_PAGE}"

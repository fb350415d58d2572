"""`unetseg compare`: pairing two runs' per-image scores, at git revisions and dvc experiments.

The library tests build per-image tables by hand; the `slow` ones run a trivial DVC
stage (a script that writes eval/per_image.csv and data/split/pairs.csv from its
params, in milliseconds) in a temporary git repo, so revisions and `dvc exp` names are
real and no model is trained.
"""

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dvcrepo import env_for, sh

from conftest import ROOT
from unetseg.compare.command import add_compare_parser
from unetseg.compare.pairing import choose_metric, compare_paired, compare_runs, pair_runs
from unetseg.compare.runs import CompareError, read_run
from unetseg.compare.spread import add_spread_parser, experiments_json, summarize_seeds
from unetseg.core.errors import reports_errors

SRC = Path(__file__).resolve().parents[2] / "src"
LOSERS = ["car03_1", "car11_2", "car17_0"]


def per_image(rng, objects=20, views=4, shift=0.0):
    ids = [f"car{g:02d}_{v}" for g in range(objects) for v in range(views)]
    level = np.repeat(rng.normal(0.95, 0.02, objects), views)
    score = level + rng.normal(0, 0.003, len(ids)) + shift
    return pd.DataFrame({"id": ids, "group": [i[:5] for i in ids], "dice": score, "original_dice": score - 0.002})


def cli(argv) -> int:
    """The `compare` subcommand as cli.py registers it."""
    parser = argparse.ArgumentParser(prog="unetseg")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))

    @reports_errors
    def main(argv):
        args = parser.parse_args(argv)
        return args.run(args)

    return main(argv)


# --- the library, on hand-made tables ------------------------------------------------


def test_planted_improvement_is_found_and_the_planted_losers_lost_most(rng):
    a = per_image(rng)
    b = a.copy()
    b["original_dice"] += 0.01
    for k, id_ in enumerate(LOSERS):  # each loses more than the one before
        b.loc[b["id"] == id_, "original_dice"] -= 0.06 + 0.01 * k
    paired = pair_runs(a, b, choose_metric(a, b))
    result = compare_paired(paired, "A", "B", "original_dice", top=5)
    assert result.verdict == "better" and result.low > 0
    assert result.difference == pytest.approx(0.01 - (0.06 + 0.07 + 0.08) / 80)
    assert [row["id"] for row in result.lost_most] == LOSERS[::-1]
    assert [row["difference"] for row in result.lost_most] == pytest.approx([-0.07, -0.06, -0.05])
    assert result.images == {"total": 80, "better": 77, "worse": 3, "unchanged": 0}
    assert result.groups == {"total": 20, "better": 17, "worse": 3, "unchanged": 0}


def test_identical_runs_show_no_difference_and_nothing_lost(rng):
    a = per_image(rng)
    result = compare_paired(pair_runs(a, a.copy(), "dice"), "A", "B", "dice")
    assert (result.difference, result.low, result.high) == (0.0, 0.0, 0.0)
    assert result.verdict == "no detectable difference"
    assert result.lost_most == [] and result.images["unchanged"] == 80


def test_other_validation_images_are_refused_with_counts(rng):
    a = per_image(rng)
    b = pd.concat([a.iloc[4:], per_image(rng, objects=1).assign(id="new_0")])
    with pytest.raises(CompareError, match=r"4 only in HEAD~1 \(car00_0, .*\), 1 only in exp-x \(new_0\), 76 in both"):
        pair_runs(a, b, "dice", "HEAD~1", "exp-x")


def test_metric_defaults_to_original_dice_when_both_runs_have_it(rng):
    a = per_image(rng)
    assert choose_metric(a, a) == "original_dice"
    assert choose_metric(a, a.drop(columns="original_dice")) == "dice"
    assert choose_metric(a, a, "dice") == "dice"
    with pytest.raises(CompareError, match="'iou' is not a per-image column of both runs"):
        choose_metric(a, a, "iou")


def test_groups_of_either_run_stay_together(rng):
    a = per_image(rng, objects=3, views=2)
    b = a.assign(group=["x", "y", "y", "z", "w", "w"])  # B links car00 with car01, car01 with ... nothing else
    paired = pair_runs(a, b, "dice")
    assert paired["group"].tolist() == ["car00", "car00", "car00", "car00", "car02", "car02"]


def test_workspace_groups_from_the_pairs_table_and_plots(tmp_path, rng, capsys):
    table = per_image(rng)
    (tmp_path / "eval").mkdir()
    table.drop(columns="group").to_csv(tmp_path / "eval" / "per_image.csv", index=False, float_format="%.6f")
    with pytest.raises(CompareError, match="no `group` column and data/split/pairs.csv is missing"):
        read_run("workspace", tmp_path)
    (tmp_path / "data" / "split").mkdir(parents=True)
    pairs = table[["id", "group"]].assign(image="i.jpg", mask="m.gif", split="validation")
    pairs.to_csv(tmp_path / "data" / "split" / "pairs.csv", index=False)
    assert read_run("workspace", tmp_path)["group"].tolist() == table["group"].tolist()

    status = cli(["compare", "workspace", "workspace", "--repo", str(tmp_path), "--json",
                  "--plot", str(tmp_path / "ab.csv")])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["verdict"] == "no detectable difference" and report["interval"] == [0.0, 0.0]
    assert pd.read_csv(tmp_path / "ab.csv").columns.tolist() == ["id", "group", "a", "b", "difference"]
    assert cli(["compare", "workspace", "workspace", "--repo", str(tmp_path), "--plot", str(tmp_path / "ab.png")]) == 0
    assert (tmp_path / "ab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["compare", "workspace", "workspace", "--repo", str(tmp_path), "--plot", str(tmp_path / "ab.svg")]) == 1
    assert "must end in .csv or .png" in capsys.readouterr().err


# --- revisions and experiments of a DVC project ------------------------------------------

MAKE = textwrap.dedent('''\
    """Per-image scores of a pretend run, from params.yaml: the evaluate stage's outputs in milliseconds."""
    import csv, json, os, random
    import yaml

    p = yaml.safe_load(open("params.yaml"))
    noise = random.Random(p["seed"])
    os.makedirs("eval", exist_ok=True), os.makedirs("data/split", exist_ok=True), os.makedirs("metrics", exist_ok=True)
    pairs, scores = [], []
    for g in range(p["objects"]):
        for v in range(4):
            id_ = f"car{g:02d}_{v}"
            side = "validation" if g % 2 == 0 else "train"
            pairs.append([id_, id_ + ".jpg", id_ + "_mask.gif", f"car{g:02d}", side])
            if side == "validation":
                score = 0.9 + 0.003 * g + 0.001 * v + noise.uniform(-0.001, 0.001) + p["shift"]
                loss = 0.05 + 0.01 * p["losers"].index(id_) if id_ in p["losers"] else 0.0
                scores.append([id_, score - loss])
    with open("data/split/pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", "image", "mask", "group", "split"]] + pairs)
    with open("eval/per_image.csv", "w", newline="") as f:  # with its group, as evaluate writes it
        rows = [[i, i[:5], f"{s:.6f}", f"{s - 0.05:.6f}", f"{s - 0.002:.6f}"] for i, s in scores]
        csv.writer(f).writerows([["id", "group", "dice", "iou", "original_dice"]] + rows)
    os.makedirs("eval/plots", exist_ok=True)
    with open("eval/plots/dice_sorted.csv", "w", newline="") as f:
        ranked = sorted(s for _, s in scores)
        csv.writer(f).writerows([["rank", "dice"]] + [[k, f"{s:.6f}"] for k, s in enumerate(ranked)])
    with open("metrics/evaluate.json", "w") as f:
        json.dump({"dice": sum(s for _, s in scores) / len(scores)}, f)
    ''')



def _project_outs(*paths: str) -> list:
    """These outputs as the project's own dvc.yaml declares them (kept in git or in the cache)."""
    outs = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["evaluate"]["outs"]
    return [out for out in outs if (next(iter(out)) if isinstance(out, dict) else out) in paths]


DVC_YAML = yaml.safe_dump({
    "stages": {"evaluate": {
        "cmd": "python make.py", "deps": ["make.py"], "params": ["seed", "objects", "shift", "losers"],
        "outs": _project_outs("eval/per_image.csv", "eval/plots") + ["data/split/pairs.csv"],
        "metrics": [{"metrics/evaluate.json": {"cache": False}}],
    }},
    "plots": [{"eval/plots/dice_sorted.csv": {"x": "rank", "y": "dice"}}],
}, sort_keys=False)

PLANTED = ["car02_1", "car10_3", "car16_0"]  # validation images (even objects); lose 0.05, 0.06, 0.07


def params(seed=0, objects=40, shift=0.0, losers=()):
    return json.dumps({"seed": seed, "objects": objects, "shift": shift, "losers": list(losers)})


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """Commits `empty` (no results), `base`, `better` (HEAD); experiments made from HEAD.

    Each experiment names all its params, since `dvc exp run` starts from the
    workspace, which the previous experiment left changed.
    """
    repo = tmp_path_factory.mktemp("compare") / "repo"
    repo.mkdir()
    (repo / "make.py").write_text(MAKE)
    (repo / "params.yaml").write_text(params())
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "no pipeline yet")
    sh(repo, "git", "tag", "empty")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    for tag, values in (("base", params()), ("better", params(shift=0.01, losers=PLANTED))):
        (repo / "params.yaml").write_text(values)
        sh(repo, "dvc", "repro", "-q")
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-qm", tag)
        sh(repo, "git", "tag", tag)
    for name, changes in (
        ("exp-seed1", {"seed": 1}),
        ("exp-seed2", {"seed": 2}),
        ("exp-fewer", {"objects": 30}),
        ("exp-down", {"shift": 0.0}),  # the last: the workspace holds its results
    ):
        values = {"seed": 0, "objects": 40, "shift": 0.01} | changes
        sh(repo, "dvc", "exp", "run", "-q", "-n", name, *[a for k, v in values.items() for a in ("-S", f"{k}={v}")])
    return repo


@pytest.mark.slow
def test_last_commit_against_the_one_before_finds_the_planted_change(project):
    result, _ = compare_runs("HEAD~1", "HEAD", project, top=3)
    assert result.metric == "original_dice" and result.verdict == "better"
    assert [row["id"] for row in result.lost_most] == PLANTED[::-1]
    assert [row["difference"] for row in result.lost_most] == pytest.approx([-0.06, -0.05, -0.04], abs=2e-6)
    assert result.images == {"total": 80, "better": 77, "worse": 3, "unchanged": 0}


@pytest.mark.slow
def test_a_fresh_clone_compares_and_diffs_plots_from_git_alone(project, tmp_path, capsys):
    clone = tmp_path / "clone"
    sh(project, "git", "clone", "-q", str(project), str(clone))
    assert not (clone / ".dvc" / "cache").exists()  # nothing fetched, no remote
    assert cli(["compare", "base", "better", "--repo", str(clone)]) == 0
    report = capsys.readouterr().out
    assert "80 validation images in 20 groups" in report and "verdict: better is better than base" in report
    assert cli(["compare", "HEAD", "HEAD", "--repo", str(clone)]) == 0
    assert "no detectable difference" in capsys.readouterr().out
    result = subprocess.run(["dvc", "plots", "diff", "base", "better", "--json"], cwd=clone, env=env_for(clone),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    plots = json.loads(result.stdout)
    (entry,) = plots["data"]["eval/plots/dice_sorted.csv"]
    assert {row["rev"] for row in entry["content"]["data"]["values"]} == {"base", "better"}
    assert "errors" not in plots


@pytest.mark.slow
def test_experiments_compared_by_name(project):
    down, _ = compare_runs("better", "exp-down", project)
    assert down.verdict == "worse" and down.high < 0
    reseed, _ = compare_runs("exp-seed1", "exp-seed2", project)
    assert reseed.verdict == "no detectable difference"
    assert reseed.low < 0 < reseed.high


@pytest.mark.slow
def test_default_is_the_last_commit_against_the_workspace_and_ci_fails_on_worse(project, capsys):
    assert cli(["compare", "--repo", str(project)]) == 0  # no --fail-if-worse: report only
    report = capsys.readouterr().out
    assert "A HEAD" in report and "B workspace" in report and "verdict: workspace is worse than HEAD" in report
    assert cli(["compare", "--repo", str(project), "--fail-if-worse", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["verdict"] == "worse"
    assert "detectably worse" in captured.err
    assert cli(["compare", "base", "better", "--repo", str(project), "--fail-if-worse"]) == 0


@pytest.mark.slow
def test_a_revision_without_results_and_other_validation_images_are_errors(project):
    with pytest.raises(CompareError, match="'empty' has no per-image results: eval/per_image.csv is missing"):
        compare_runs("empty", "HEAD", project)
    with pytest.raises(CompareError, match=r"20 only in HEAD \(car30_0, .*\), 0 only in exp-fewer, 60 in both"):
        compare_runs("HEAD", "exp-fewer", project)
    with pytest.raises(CompareError, match="revision 'no-such-rev'"):
        compare_runs("no-such-rev", "HEAD", project)


@pytest.mark.slow
def test_the_command_imports_no_tensorflow(project):
    code = (
        "import sys; from unetseg.compare.pairing import compare_runs; compare_runs('HEAD~1', 'HEAD', sys.argv[1]);"
        "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules))"
    )
    env = env_for(project) | {"PYTHONPATH": str(SRC)}
    result = subprocess.run([sys.executable, "-c", code, str(project)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_spread_over_the_experiments_of_dvc_exp_show(project, capsys):
    summary = summarize_seeds(experiments_json(project))
    values = summary["values"]
    assert set(values) == {"exp-seed1", "exp-seed2", "exp-fewer", "exp-down"}
    assert values["exp-seed1"] - values["exp-down"] == pytest.approx(0.01, abs=0.002)
    assert summary["varying"] == ["params.yaml:objects", "params.yaml:seed", "params.yaml:shift"]

    parser = argparse.ArgumentParser(prog="unetseg")
    add_spread_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["spread", "--repo", str(project), "--json"])
    assert args.run(args) == 0
    assert json.loads(capsys.readouterr().out)["experiments"] == 4

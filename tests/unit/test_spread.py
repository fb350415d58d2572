"""`unetseg spread`: a metric's mean, std and range over the experiments of `dvc exp show --json`."""

import pytest

from unetseg.compare.spread import SpreadError, format_spread, summarize_seeds


def run(rev, name, seed, dice, lr=1.0e-3, error=None, split_seed=42):
    """One entry as DVC 3's `dvc exp show --json` writes it (only the fields spread reads)."""
    data = {
        "rev": rev,
        "params": {"params.yaml": {"data": {"base": {"seed": split_seed},
                                            "train": {"lr": lr, "seed_offset": seed}}}},
        "metrics": {} if dice is None else {"metrics/evaluate.json": {"data": {"dice": dice, "iou": dice - 0.05}}},
    }
    return {"rev": rev, "name": name, "data": data, "error": error, "experiments": None}


def show(*experiments, baseline_dice=0.99):
    baseline = run("a" * 40, "main", 42, baseline_dice)
    baseline["experiments"] = [{"revs": [e], "executor": None, "name": e["name"]} for e in experiments]
    return [run("workspace", None, 3, 0.5), baseline]


def test_mean_std_and_range_over_reseeds():
    summary = summarize_seeds(show(run("1" * 40, "s1", 1, 0.90), run("2" * 40, "s2", 2, 0.92),
                                   run("3" * 40, "s3", 3, 0.94)))
    assert summary["experiments"] == 3
    assert summary["mean"] == pytest.approx(0.92)
    assert summary["std"] == pytest.approx(0.02)  # sample std (n - 1)
    assert (summary["min"], summary["max"], summary["range"]) == pytest.approx((0.90, 0.94, 0.04))
    assert summary["values"] == {"s1": 0.90, "s2": 0.92, "s3": 0.94}  # not the workspace, not the baseline
    assert summary["varying"] == ["params.yaml:train.seed_offset"]
    assert "std 0.0200" in format_spread(summary) and "note" not in format_spread(summary)


def test_queued_and_failed_experiments_are_skipped_and_named():
    summary = summarize_seeds(show(
        run("1" * 40, "s1", 1, 0.90), run("2" * 40, "s2", 2, 0.92),
        run("4" * 40, "queued", 4, None), run("5" * 40, "failed", 5, 0.1, error={"msg": "boom"}),
    ))
    assert set(summary["values"]) == {"s1", "s2"}
    assert summary["skipped"] == ["queued", "failed"]
    assert "skipped (no metrics/evaluate.json:dice: queued or failed): queued, failed" in format_spread(summary)


def test_other_varying_params_are_named_and_the_baseline_can_count():
    summary = summarize_seeds(show(run("1" * 40, "s1", 1, 0.90), run("2" * 40, "s2", 2, 0.92, lr=2.0e-3)),
                              metric="iou", include_baseline=True)
    assert summary["values"] == pytest.approx({"main": 0.94, "s1": 0.85, "s2": 0.87})
    assert summary["varying"] == ["params.yaml:train.lr", "params.yaml:train.seed_offset"]
    assert "params that differ between them: params.yaml:train.lr, params.yaml:train.seed_offset" in (
        format_spread(summary))


def test_reseeding_by_the_split_seed_gets_a_note():
    summary = summarize_seeds(show(run("1" * 40, "s1", 0, 0.90, split_seed=1), run("2" * 40, "s2", 0, 0.92, split_seed=2)))
    assert summary["varying"] == ["params.yaml:base.seed"]
    assert "note: base.seed also redraws the split" in format_spread(summary)


def test_fewer_than_two_experiments_with_the_metric_is_an_error():
    with pytest.raises(SpreadError, match=r"1 experiment\(s\) with metrics/evaluate.json:dice .*queued"):
        summarize_seeds(show(run("1" * 40, "s1", 1, 0.90), run("4" * 40, "queued", 4, None)))


def test_the_help_reseeds_as_the_readme_does(capsys):
    from unetseg.cli import main

    with pytest.raises(SystemExit):
        main(["spread", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "several train.seed_offset values" in text

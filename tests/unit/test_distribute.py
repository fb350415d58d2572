import json

import pytest
import tensorflow as tf

from unetseg.train.distribute import (
    DistributeError,
    make_strategy,
    per_replica_batch,
    role,
    shards_for_pipeline,
)


def test_each_worker_gets_every_nth_shard():
    files = [f"train-{i}" for i in range(6)]
    assert shards_for_pipeline(files, 0, 2) == ["train-0", "train-2", "train-4"]
    assert shards_for_pipeline(files, 1, 3) == ["train-1", "train-4"]


def test_shards_that_workers_cannot_share_evenly_are_an_error():
    with pytest.raises(DistributeError, match="3 train shard.*2 workers.*preprocess.num_shards to a multiple of 2"):
        shards_for_pipeline(["a", "b", "c"], 0, 2)
    with pytest.raises(DistributeError, match="1 train shard"):
        shards_for_pipeline(["a"], 0, 4)


def test_global_batch_must_split_evenly_over_replicas():
    assert per_replica_batch(16, 4) == 4
    with pytest.raises(DistributeError, match="train.batch_size: the global batch 10 .* 4 replicas"):
        per_replica_batch(10, 4)


def test_multi_worker_without_tf_config_names_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributeError, match="multi_worker needs TF_CONFIG"):
        make_strategy("multi_worker")


@pytest.mark.parametrize("config", ["not json", json.dumps({"cluster": {}}), json.dumps(
    {"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}})])
def test_malformed_tf_config_names_it(monkeypatch, config):
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(DistributeError, match="TF_CONFIG"):
        make_strategy("multi_worker")


def test_one_device_is_the_chief_and_not_distributed():
    me = role(make_strategy("auto"))
    assert (me.distributed, me.is_chief, me.num_workers, me.num_replicas) == (False, True, 1, 1)
    mirrored = role(make_strategy("mirrored"))
    assert mirrored.distributed and mirrored.is_chief and mirrored.num_workers == 1
    assert mirrored.num_replicas == max(1, len(tf.config.list_logical_devices("GPU")))

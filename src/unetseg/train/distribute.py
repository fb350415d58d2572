"""Training on several devices or machines with tf.distribute: strategy, chief, shards per worker.

`train.batch_size` is the global batch: each step averages the gradient over that many
examples, split evenly across all replicas, so the learning rate needs no change when
the same global batch is spread over more devices. Growing the global batch is a
different experiment: the usual starting point is to scale `train.lr` by the same
factor (the linear scaling rule) and to check the curves.

Each input pipeline (one per worker) reads its own TFRecord shards, shard i going to
pipeline i mod n, so preprocess must write a multiple of n train shards.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tensorflow as tf

from unetseg.core.errors import UnetsegError


class DistributeError(UnetsegError):
    """A strategy that cannot run with this cluster or these shards."""


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `train.strategy`; create it before any other TensorFlow work.

    auto: MirroredStrategy when several GPUs are visible, else the default one-device strategy.
    mirrored: MirroredStrategy over the local GPUs (or the CPU).
    multi_worker: MultiWorkerMirroredStrategy over the cluster described in TF_CONFIG.
    """
    if name == "multi_worker":
        _check_tf_config()
        return _MultiWorkerStrategy()
    if name == "mirrored" or (name == "auto" and len(tf.config.list_physical_devices("GPU")) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()  # auto on one device (params allow no other name)


class _MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy with the `reduce` that Keras 3's `fit` expects of it.

    `fit` reduces a whole (image, mask) batch in one call to learn its shapes, and
    averages each step's scalar logs "along axis 0"; this strategy's reduce takes one
    value only and rejects an axis on a scalar, so `fit` fails (keras-team/keras#20585).
    Here each value is reduced on its own, and a scalar across replicas only.
    """

    def reduce(self, reduce_op, value, axis):
        def one(v):
            rank = self.experimental_local_results(v)[0].shape.rank
            return super(_MultiWorkerStrategy, self).reduce(reduce_op, v, None if rank == 0 else axis)

        return tf.nest.map_structure(one, value)


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise DistributeError(
            "train.strategy multi_worker needs TF_CONFIG in each worker's environment, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task["type"], task["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise DistributeError(
            f"TF_CONFIG: needs cluster.worker (a list of host:port) and task.type and task.index ({error!r})"
        ) from None
    if not isinstance(workers, list) or not workers:
        raise DistributeError("TF_CONFIG: cluster.worker must be a non-empty list of host:port")


@dataclass(frozen=True)
class Role:
    """Where this process stands in the cluster, and whether it writes the results."""

    distributed: bool  # False: the default one-device strategy, no tf.distribute in the way
    is_chief: bool
    task: str  # "chief", or "worker-<index>"
    num_workers: int  # processes, each with its own input pipeline
    num_replicas: int  # devices training in sync, over all workers


def role(strategy: tf.distribute.Strategy) -> Role:
    """The chief (task chief, or worker 0 when the cluster has no chief) alone writes outputs."""
    distributed = isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy))
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return Role(distributed, True, "chief", 1, strategy.num_replicas_in_sync)
    cluster = resolver.cluster_spec().as_dict()
    task_id = resolver.task_id or 0
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)
    num_workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return Role(
        distributed, is_chief, "chief" if is_chief else f"{task_type}-{task_id}", num_workers,
        strategy.num_replicas_in_sync,
    )


def per_replica_batch(global_batch: int, num_replicas: int) -> int:
    if global_batch % num_replicas:
        raise DistributeError(
            f"train.batch_size: the global batch {global_batch} must be divisible by the "
            f"{num_replicas} replicas training in sync"
        )
    return global_batch // num_replicas


def shards_for_pipeline(files: list[str], pipeline: int, num_pipelines: int) -> list[str]:
    """Shard i goes to pipeline i mod n; every pipeline gets as many shards as any other."""
    if len(files) % num_pipelines:
        raise DistributeError(
            f"{len(files)} train shard(s) cannot be shared evenly by {num_pipelines} workers: "
            f"set preprocess.num_shards to a multiple of {num_pipelines} (and at most the number of train images)"
        )
    return files[pipeline::num_pipelines]

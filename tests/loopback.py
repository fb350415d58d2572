"""TF_CONFIGs for trying multi-worker training on one machine: a helper of the tests and benchmarks,
not of the library (editing it retrains nothing)."""

from __future__ import annotations

import json
import socket


def loopback_tf_configs(workers: int) -> list[str]:
    """TF_CONFIG for each of `workers` processes on free 127.0.0.1 ports (worker 0 the chief),
    to try multi-worker training on one machine."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]

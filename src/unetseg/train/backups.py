"""The backup folder of an unfinished training: what it must match to be resumed, and
which folders unetseg may delete.

Keras `BackupAndRestore` writes weights, optimizer state and epoch there after
every epoch. unetseg marks each backup folder it creates with a fingerprint of
everything that shapes training (params and data); a folder with another
fingerprint is discarded with a warning. A folder without unetseg's mark is never
deleted: `--backup models` must not wipe `models/`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict, fields
from pathlib import Path

from unetseg.config.params import Params
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import UnetsegError
from unetseg.preprocess.tfrecords import read_manifest

FINGERPRINT = "fingerprint.json"
METADATA = "training_metadata.json"  # written by Keras BackupAndRestore: the epochs done
BEST_STATE = "best.json"  # the best epoch and value, and the name of its weights file: one rename commits all three
BEST_WEIGHTS = "best-{epoch}.weights.h5"


class BackupError(UnetsegError):
    """A backup folder that unetseg did not create and will not touch."""


def fingerprint(params: Params, tfrecord_dir: str | Path, num_replicas: int = 1) -> str:
    """What a backup must match to be resumed: everything that shapes training, and the data."""
    shaping = {
        "replicas": num_replicas,
        "base": [params.training_seed, params.base.deterministic],
        "image_size": params.preprocess.image_size,
        # not the overlap, an inference setting (reading it would count as a train stage param)
        "patches": {f.name: getattr(params.patches, f.name) for f in fields(params.patches) if f.name != "overlap"},
        "augment": asdict(params.augment),
        "model": asdict(params.model),
        "train": asdict(params.train),
        "classes": asdict(params.classes),  # the loss weights; the class map is in the manifest too
        "data": read_manifest(tfrecord_dir),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def _mark(folder: Path) -> str | None:
    """The fingerprint in a folder's mark; None for a folder that is absent or empty.

    A folder with files but no readable mark was not made by unetseg: refused.
    """
    if not folder.exists() or (folder.is_dir() and not any(folder.iterdir())):
        return None
    marker = folder / FINGERPRINT
    try:
        found = json.loads(marker.read_text())["fingerprint"]
        if isinstance(found, str):
            return found
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise BackupError(
        f"{folder}: this backup folder holds files but no unetseg {FINGERPRINT}: it was not made by "
        "unetseg, so it is neither resumed nor deleted; move it away or choose another backup folder"
    )


def best_state(folder: Path) -> dict | None:
    """{"epoch", "value", "weights"} of the best epoch kept in a backup folder, or None (none kept, or
    its weights file gone).

    A backup of before the weights file was named in the state has it under its old name.
    """
    state = folder / BEST_STATE
    if not state.exists():
        return None
    best = {"weights": "best.weights.h5"} | json.loads(state.read_text())
    return best if (folder / best["weights"]).is_file() else None


def remove_backup(folder: Path) -> None:
    """Delete a backup folder, if unetseg made it (see `_mark`)."""
    _mark(folder)
    shutil.rmtree(folder, ignore_errors=True)


def resumable(folder: Path, expected: str) -> bool:
    return _mark(folder) == expected and (folder / METADATA).exists()


def epochs_done(folder: Path) -> int:
    return json.loads((folder / METADATA).read_text())["epoch"]


def prepare_backup(backup_dir: Path, expected: str) -> bool:
    """True if `backup_dir` holds a resumable backup; one made with other params or data is discarded with a warning."""
    if resumable(backup_dir, expected):
        return True
    found = _mark(backup_dir)
    if found is not None and found != expected:
        print(f"warning: {backup_dir}: backup made with other params or data, discarded", file=sys.stderr)
    shutil.rmtree(backup_dir, ignore_errors=True)
    backup_dir.mkdir(parents=True)
    with atomic_output(backup_dir / FINGERPRINT) as temporary:  # other workers may be reading it
        temporary.write_text(json.dumps({"fingerprint": expected}) + "\n")
    return False


def worker_backup(backup_dir: Path, expected: str, task: str) -> tuple[Path, bool]:
    """A non-chief worker's own backup folder beside the chief's, started from it if resumable.

    Workers must not write the chief's files; they only read them, before the first
    epoch, which the chief cannot finish without them.
    """
    local = backup_dir.with_name(f"{backup_dir.name}-{task}")
    remove_backup(local)
    if resumable(backup_dir, expected):
        shutil.copytree(backup_dir, local)
        return local, True
    local.mkdir(parents=True)
    with atomic_output(local / FINGERPRINT) as temporary:
        temporary.write_text(json.dumps({"fingerprint": expected}) + "\n")
    return local, False

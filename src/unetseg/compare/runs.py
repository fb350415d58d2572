"""Reading a run's per-image scores at a git revision, a `dvc exp` name or the workspace, through DVC."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from unetseg.core.errors import UnetsegError, listed

WORKSPACE = "workspace"
PER_IMAGE = "eval/per_image.csv"
PAIRS = "data/split/pairs.csv"
DEFAULT_METRICS = ("original_dice", "dice")  # the first that both runs have
SHOWN_IDS = 5  # ids listed in an error message


class CompareError(UnetsegError):
    """A run that cannot be compared: missing results, unknown revision, other validation images."""


def listed_ids(ids) -> str:
    return listed(sorted(ids), SHOWN_IDS)


class _Revision:
    """Text of the project's files at one revision: from disk for the workspace, else through DVC.

    DVC's file system sees git-tracked files and DVC outputs alike, resolves experiment
    names, and reads outputs from the local cache, else from the default remote that the
    revision's own .dvc/config names.
    """

    def __init__(self, repo: str | Path, rev: str):
        self.repo, self.rev = Path(repo), rev
        self.fs = None
        if rev != WORKSPACE:
            from dvc.api import DVCFileSystem
            from dvc.exceptions import DvcException

            self.fs = DVCFileSystem(str(self.repo), rev=rev)
            try:  # the repo opens lazily: an unknown revision would otherwise read as missing files
                _ = self.fs.repo
            except DvcException as error:  # unknown revision, not a git or DVC repository
                self.close()
                raise CompareError(f"revision {rev!r} in {self.repo}: {error}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        if self.fs is not None:
            self.fs.close()

    def read(self, path: str) -> str | None:
        """The file's text, or None when the revision has no such file."""
        if self.fs is None:
            file = self.repo / path
            return file.read_text() if file.is_file() else None
        if not self.fs.exists(path):
            return None
        try:
            return self.fs.read_text(path)
        except FileNotFoundError:
            raise CompareError(
                f"{path} at {self.rev!r} is kept in the DVC cache (a dvc.yaml of before it was kept in git), and "
                f"its data is neither in the local cache nor in the remote configured at that revision: fetch it "
                f"(`dvc fetch --all-commits`; `dvc exp pull <git remote> <experiment>` for an experiment)"
            ) from None


def read_run(rev: str = WORKSPACE, repo: str | Path = ".", per_image: str = PER_IMAGE,
             pairs: str = PAIRS) -> pd.DataFrame:
    """A run's per-image table at `rev`, with a `group` column (from the table or the pairs file)."""
    with _Revision(repo, rev) as revision:
        text = revision.read(per_image)
        if text is None:
            where = "in the workspace (run `dvc repro`)" if rev == WORKSPACE else (
                "at that revision (no evaluate results were committed there)")
            raise CompareError(f"{rev!r} has no per-image results: {per_image} is missing {where}")
        table = pd.read_csv(io.StringIO(text), dtype={"id": str, "group": str}, keep_default_na=False)
        if "id" not in table.columns:
            raise CompareError(f"{per_image} at {rev!r}: no `id` column (columns: {', '.join(table.columns)})")
        duplicated = set(table["id"][table["id"].duplicated()])
        if duplicated:
            raise CompareError(f"{per_image} at {rev!r}: repeated id(s): {listed_ids(duplicated)}")
        if "group" in table.columns:
            return table
        pairs_text = revision.read(pairs)
    if pairs_text is None:
        raise CompareError(
            f"{per_image} at {rev!r} has no `group` column and {pairs} is missing there: "
            f"the groups to resample are unknown"
        )
    groups = pd.read_csv(io.StringIO(pairs_text), dtype=str, keep_default_na=False)
    if not {"id", "group"} <= set(groups.columns):
        raise CompareError(f"{pairs} at {rev!r}: needs columns `id` and `group`")
    group_of = groups.set_index("id")["group"]
    unknown = set(table["id"]) - set(group_of.index)
    if unknown:
        raise CompareError(f"{len(unknown)} id(s) of {per_image} at {rev!r} are not in {pairs}: {listed_ids(unknown)}")
    return table.assign(group=table["id"].map(group_of).to_numpy())

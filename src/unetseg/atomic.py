"""Write outputs under a temporary name and rename them into place, so a crash or a
Ctrl-C never leaves a half-written file under its final name."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_output(final: str | Path):
    """Yield a temporary sibling path that replaces `final` on success.

    The temporary name ends with the final name, so libraries that check a suffix
    (".keras", ".weights.h5") accept it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".tmp-{os.getpid()}-{final.name}")
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    _remove(final)
    os.replace(temporary, final)

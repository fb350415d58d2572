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
    """Yield a temporary sibling path (same suffix) that replaces `final` on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")
    _remove(temporary)
    try:
        yield temporary
    except BaseException:
        _remove(temporary)
        raise
    _remove(final)
    os.replace(temporary, final)

"""Write outputs under a temporary name and rename them into place, so a crash or a
Ctrl-C never leaves a half-written file under its final name, nor takes the old one away.

A file replaces its old version in one `os.replace`. A folder cannot be renamed
over a folder that holds files, so on Linux the two are swapped in one
`renameat2(RENAME_EXCHANGE)` and the old one, now under the temporary name, is
deleted; where the system lacks it, the old folder is moved aside first (two
renames: a kill between them leaves the new folder under its temporary name and
the old one under `.old-...`, never a half-written one under the final name).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the system or file system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def replace(temporary: Path, final: Path) -> None:
    """Put the complete `temporary` under the name `final`, with no moment at which `final` is missing
    (but for the fallback of the module docstring)."""
    folder_involved = temporary.is_dir() or (final.is_dir() and not final.is_symlink())
    if not folder_involved or not (final.exists() or final.is_symlink()):
        os.replace(temporary, final)  # a file over a file or a link, or nothing there: one rename
        return
    if not _exchange(temporary, final):
        aside = final.with_name(f".old-{os.getpid()}-{final.name}")
        _remove(aside)
        os.replace(final, aside)
        os.replace(temporary, final)
        temporary = aside
    _remove(temporary)  # the old output, now under the temporary name


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
        replace(temporary, final)
    except BaseException:
        _remove(temporary)
        raise


@contextmanager
def atomic_outputs(*finals: str | Path):
    """`atomic_output` for several outputs that belong together (a stage's files): yield their temporary
    paths, and only when every one is written put them all in place, one rename after another. A
    failure while writing leaves every old output as it was, never some new beside some old."""
    finals = [Path(final) for final in finals]
    temporaries = []
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        temporaries.append(final.with_name(f".tmp-{os.getpid()}-{final.name}"))
        _remove(temporaries[-1])
    try:
        yield temporaries
        for temporary, final in zip(temporaries, finals):
            replace(temporary, final)
    except BaseException:
        for temporary in temporaries:
            _remove(temporary)
        raise

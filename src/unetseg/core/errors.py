"""Errors that a user can act on: each names the file or key and the problem."""

import argparse
import functools
import sys


class UnetsegError(Exception):
    """Base of the errors a stage reports as one message and a non-zero exit."""


class DataError(UnetsegError):
    """An input file or folder that cannot be used."""


def listed(items, shown: int = 5) -> str:
    """The first `shown` items of an error message's list, and how many more there are."""
    items = [str(i) for i in items]
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


class UsageError(UnetsegError):
    """A command line that argparse cannot read: a missing argument, an unknown option, a bad value."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose errors end as one `error:` line and status 1 like every other bad input
    (argparse's own way is a usage block and status 2)."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def reports_errors(main):
    """Turn a UnetsegError into one `error: ...` line on stderr and exit status 1."""

    @functools.wraps(main)
    def wrapper(argv=None) -> int:
        try:
            return main(argv) or 0
        except UnetsegError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return wrapper

"""The errors a person running a command can fix: entry points print their message as one line, no traceback.

Everything else (a bug) keeps its traceback. A message names the file, the config key or the value that is
wrong and what was expected.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class UserError(Exception):
    """A problem in the command line, the config or the files it names; the message says which and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config value is wrong; the message names the key and what was expected."""


class WriteError(UserError, OSError):
    """A file could not be written (disk full, file-size limit, read-only folder); the message names the path."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the command names does not exist; the message names it and the key that pointed there."""


class DivergedError(UserError, FloatingPointError):
    """Training produced a non-finite loss; the message says at which step and what to change."""


def user_message(err: BaseException) -> str:
    """The message to print for ``err``; for an error a DataLoader worker re-raised, the worker's own message.

    PyTorch re-raises a worker's exception in the main process with the worker's whole traceback as its
    message; its last line holds what the error itself said.
    """
    text = str(err)
    if "\nOriginal Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text


def exit_on_user_error(main: Callable[P, R]) -> Callable[P, R]:
    """Wrap an entry point: a :class:`UserError` (or a missing file) prints ``error: <message>``, exit code 2.

    Put it under ``@hydra.main`` so Hydra's own handler, which prints tracebacks, never sees these errors.
    """

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return main(*args, **kwargs)
        except (UserError, FileNotFoundError) as err:
            print(f"error: {user_message(err)}", file=sys.stderr)
            sys.exit(2)

    return run


class DataError(UserError, ValueError):
    """A data file or pair is unusable (unreadable, empty, sizes that differ); the message names the files."""


class ImageReadError(DataError):
    """An image file cannot be decoded; the message names the file and the decoder's reason."""

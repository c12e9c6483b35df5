"""The errors a person running a command can fix: entry points print their message as one line, no traceback.

Everything else (a bug) keeps its traceback. A message names the file, the config key or the value that is
wrong and what was expected.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem in the command line, the config or the files it names; the message says which and how to fix it."""


class ConfigError(UserError, ValueError):
    """A config value is wrong; the message names the key and what was expected."""


class WriteError(UserError, OSError):
    """A file could not be written (disk full, file-size limit, read-only folder); the message names the path."""

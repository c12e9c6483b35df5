"""The one way the suite writes a file: whole or not at all, with the usual permissions, errors naming the path.

The bytes go to a temporary file beside the target (same folder, so the same filesystem), are flushed to disk,
and replace the target by one ``os.replace``. A kill at any moment leaves either the previous file or the new
one, never a truncated target, and the previous good file is never deleted before the new one is whole. The
temporary file is created with mode 0666 minus the umask (not ``mkstemp``'s 0600), so people sharing a
filesystem can read results as they read any other file. A temporary file left by a killed process is removed
by the next write of the same target. Failures (disk full, file-size limit, read-only folder) raise
:class:`~src.utils.errors.WriteError` naming the file and the reason.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from src.utils.errors import WriteError

PARTIAL = ".partial"


def _reason(err: OSError) -> str:
    if err.errno == errno.EFBIG:
        return "file too large (the process's file-size limit, ulimit -f, or the filesystem's)"
    return err.strerror or str(err)


def _partial_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Delete the temporary files of ``path`` whose writing process no longer runs; returns them."""
    removed = []
    for partial in path.parent.glob(f".{path.name}.*{PARTIAL}"):
        pid = partial.name[len(path.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            partial.unlink(missing_ok=True)
            removed.append(partial)
    return removed


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not possible everywhere (some filesystems, Windows); the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it onto ``path``; returns ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(f"cannot create the folder {path.parent} for {path.name}: {_reason(err)}") from None
    partial = _partial_name(path)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {_reason(err)}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    remove_stale_partials(path)
    return path


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    return write_atomic(path, lambda file: file.write(data))


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))

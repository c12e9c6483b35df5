"""The one file writer: whole or nothing, usual permissions, stale temporary files removed, clear failures."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from src.utils.atomic import PARTIAL, remove_stale_partials, write_atomic, write_bytes_atomic
from src.utils.errors import WriteError

ROOT = Path(__file__).resolve().parents[2]


def test_replaces_the_target_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "sub" / "result.json"
    write_bytes_atomic(path, b"1")
    write_bytes_atomic(path, b"2")
    assert path.read_bytes() == b"2"
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]


def test_a_failed_write_keeps_the_previous_file_and_removes_its_temporary_file(tmp_path):
    path = tmp_path / "last.ckpt"
    write_bytes_atomic(path, b"good")

    def half_then_fail(file):
        file.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "metrics.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_dead_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".last.ckpt.{dead.stdout.strip()}-0000{PARTIAL}"
    stale.write_bytes(b"x" * 100)
    alive = tmp_path / f".last.ckpt.{os.getppid()}-0000{PARTIAL}"  # a live process's file stays
    alive.write_bytes(b"y")
    write_bytes_atomic(tmp_path / "last.ckpt", b"new")
    assert not stale.exists() and alive.exists()
    assert remove_stale_partials(tmp_path / "last.ckpt") == []


def test_a_read_only_folder_fails_naming_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:  # root writes into read-only folders: refuse the file creation as the kernel would
        real_open = os.open

        def refuse(path, flags, *args):
            if Path(path).parent == folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", refuse)
    folder.chmod(0o500)
    try:
        with pytest.raises(WriteError, match=r"cannot write .*ro/out\.json: Permission denied"):
            write_bytes_atomic(folder / "out.json", b"{}")
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_a_folder_that_cannot_be_created_fails_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match=r"cannot create the folder .*file/sub for out\.json"):
        write_bytes_atomic(tmp_path / "file" / "sub" / "out.json", b"{}")


def test_the_file_size_limit_fails_naming_the_file_and_the_reason(tmp_path):
    """``ulimit -f`` (a full disk fails the same way): the writer names the path and the reason, nothing is left."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "from src.utils.atomic import write_bytes_atomic\n"
        "from src.utils.errors import WriteError\n"
        "try:\n"
        f"    write_bytes_atomic({str(tmp_path / 'big.ckpt')!r}, b'x' * 100_000)\n"
        "except WriteError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"cannot write {tmp_path / 'big.ckpt'}: file too large" in done.stdout
    assert list(tmp_path.iterdir()) == []

"""Errors a user can fix print as one line (exit code 2); everything else keeps its traceback."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from src.utils.errors import ImageReadError, UserError, exit_on_user_error, user_message


def test_a_user_error_prints_one_line_and_exits_2(capsys):
    @exit_on_user_error
    def main() -> None:
        raise UserError("data.batch_size=-1: expected a whole number >= 1")

    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2
    assert capsys.readouterr().err == "error: data.batch_size=-1: expected a whole number >= 1\n"


def test_a_bug_keeps_its_traceback():
    @exit_on_user_error
    def main() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        main()


class _Unreadable(Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> torch.Tensor:
        raise ImageReadError("cannot read image /data/x.png: image file is truncated")


def test_an_error_re_raised_from_a_loader_worker_prints_the_workers_own_message():
    loader = DataLoader(_Unreadable(), num_workers=1)
    with pytest.raises(ImageReadError) as err:
        next(iter(loader))
    assert "Original Traceback" in str(err.value)
    assert user_message(err.value) == "cannot read image /data/x.png: image file is truncated"

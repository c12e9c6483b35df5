"""Captions files (Perceive-IR's tab-separated layout or name<TAB>caption) and the caption field of samples."""

from __future__ import annotations

import pytest

from src.data.captions import WithCaptions, read_captions
from src.utils.errors import DataError


def test_both_layouts_key_captions_by_the_degraded_image_name(tmp_path) -> None:
    official = tmp_path / "rain_LQ_caption.csv"
    official.write_text("gt_path\tlq_path\tcaption\tdegradation\n"
                        "gt/rain-001.png\tlq/rain-001.png\ta street in the rain\train\n")
    assert read_captions(official) == {"rain-001": "a street in the rain"}
    plain = tmp_path / "captions.tsv"
    plain.write_text("rain-002.jpg\ta bridge\n0001_0.8_0.2\ta hazy house\n")  # SOTS' names keep their dots
    assert read_captions(plain) == {"rain-002": "a bridge", "0001_0.8_0.2": "a hazy house"}
    (tmp_path / "bad.tsv").write_text("only-a-name\n")
    with pytest.raises(DataError, match="bad.tsv:1"):
        read_captions(tmp_path / "bad.tsv")


def test_samples_carry_their_caption_or_an_empty_one() -> None:
    data = [{"name": "rain-001", "lq": 0}, {"name": "unknown", "lq": 1}]
    captioned = WithCaptions(data, {"rain-001": "a street in the rain"})
    assert captioned[0]["caption"] == "a street in the rain" and captioned[1]["caption"] == ""
    assert captioned.missing == {"unknown"}

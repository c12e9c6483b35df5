"""The published numbers round-trip from PROTOCOLS.md, and differences come from the two numbers."""

from __future__ import annotations

import re

import pytest

from src.results.published import AVERAGE, comparison_rows, load_published, setting_of

FIVE = ("sots_outdoor", "rain100l", "cbsd68_s25", "gopro", "lol")


def _score(cell: str) -> tuple[float, float]:
    psnr, ssim = cell.split("/")
    return float(psnr), float(ssim)


def test_5deg_table_matches_protocols_md(shared_dir):
    text = (shared_dir / "design" / "PROTOCOLS.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| [A-Za-z].* \| [\d.]+M \|", line)]
    assert len(rows) == 8
    published = load_published()["5deg"].methods
    for line in rows:
        name, params, *cells = [c.strip() for c in line.strip("|").split("|")]
        method = published[name]
        assert method.params == float(params.rstrip("M"))
        for benchmark, cell in zip((*FIVE, AVERAGE), cells):
            score = method.average if benchmark == AVERAGE else method.results[benchmark]
            assert (score.psnr, score.ssim) == _score(cell), (name, benchmark)


def test_3deg_numbers_match_protocols_md(shared_dir):
    text = (shared_dir / "design" / "PROTOCOLS.md").read_text()
    promptir = load_published()["3deg"].methods["PromptIR"]
    columns = {"SOTS": "sots_outdoor", "Rain100L": "rain100l", "sigma15": "cbsd68_s15", "sigma25": "cbsd68_s25",
               "sigma50": "cbsd68_s50"}
    for label, benchmark in columns.items():
        psnr, ssim = re.search(rf"{label} (\d+\.\d+)/(\d?\.\d+)", text).groups()
        assert (promptir.results[benchmark].psnr, promptir.results[benchmark].ssim) == (float(psnr), float(ssim))
    for name in ("AirNet", "PromptIR", "Art-PromptIR"):
        psnr, ssim = re.search(rf"{name} (\d+\.\d+) / (\d?\.\d+)", text).groups()
        average = load_published()["3deg"].methods[name].average
        assert (average.psnr, average.ssim) == (float(psnr), float(ssim))


def test_known_values_and_that_averages_are_the_column_means():
    settings = load_published()
    promptir = settings["5deg"].methods["PromptIR"]
    assert (promptir.average.psnr, promptir.average.ssim) == (29.15, 0.904)
    assert settings["3deg"].methods["PromptIR"].average.psnr == 32.06
    for setting in settings.values():
        for method in setting.methods.values():
            assert set(method.results) <= set(setting.benchmarks)
            if method.results and method.average is not None:  # a stated average is the mean of all columns
                assert set(method.results) == set(setting.benchmarks)
                psnr = sum(s.psnr for s in method.results.values()) / len(method.results)
                ssim = sum(s.ssim for s in method.results.values()) / len(method.results)
                assert psnr == pytest.approx(method.average.psnr, abs=0.011), (setting.name, method.name)
                assert ssim == pytest.approx(method.average.ssim, abs=0.0011), (setting.name, method.name)


def ours(psnr: float = 30.0, ssim: float = 0.9, skip: tuple[str, ...] = ()) -> dict[str, dict[str, float]]:
    return {b: {"psnr": psnr + i, "ssim": ssim, "input_psnr": 20.0, "input_ssim": 0.5}
            for i, b in enumerate(FIVE) if b not in skip}


def test_differences_are_ours_minus_published():
    rows = comparison_rows("5deg", ours(), "promptir", methods=["PromptIR"])
    assert [r.benchmark for r in rows] == [*FIVE, AVERAGE]
    for row in rows:
        assert row.diff_psnr == row.ours_psnr - row.published_psnr
        assert row.diff_ssim == row.ours_ssim - row.published_ssim
    average = rows[-1]
    assert average.ours_psnr == pytest.approx(32.0) and average.published_psnr == 29.15
    assert average.diff_psnr == pytest.approx(32.0 - 29.15)


def test_different_quantities_are_not_subtracted():
    moce = comparison_rows("5deg", ours(), "promptir", methods=["MoCE-IR"])
    assert all(r.diff_psnr is not None and r.diff_ssim is None for r in moce)  # same PSNR, Gaussian SSIM
    assert "gaussian_ssim" in moce[0].note
    y = comparison_rows("5deg", ours(), "y_channel", methods=["PromptIR"])
    assert all(r.diff_psnr is None and r.diff_ssim is None for r in y)


def test_missing_benchmark_leaves_the_average_empty():
    rows = comparison_rows("5deg", ours(skip=("lol",)), "promptir", methods=["AdaIR"])
    lol = next(r for r in rows if r.benchmark == "lol")
    average = rows[-1]
    assert lol.ours_psnr is None and lol.diff_psnr is None and lol.note == "not evaluated"
    assert average.ours_psnr is None and average.diff_psnr is None and "lol" in average.note


def test_methods_with_only_an_average_get_one_row():
    rows = comparison_rows("3deg", {}, "promptir")
    assert [(r.method, r.benchmark) for r in rows if r.method != "PromptIR"] == [
        ("AirNet", AVERAGE), ("Art-PromptIR", AVERAGE), ("MoCE-IR", AVERAGE)
    ]
    with pytest.raises(KeyError, match="NoSuchNet"):
        comparison_rows("3deg", {}, "promptir", methods=["NoSuchNet"])


def test_setting_of_data_names():
    assert setting_of("5deg") == "5deg" and setting_of("3deg") == "3deg"
    assert setting_of("synth5deg") is None and setting_of(None) is None


def test_super_resolution_rows_compare_under_the_sr_protocol_only():
    ours_x2 = {"set5_x2": {"psnr": 38.0, "ssim": 0.96}}
    rows = {(r.method, r.benchmark): r for r in comparison_rows("sr_x2", ours_x2, "sr")}
    assert rows[("RCAN", "set5_x2")].diff_psnr == pytest.approx(38.0 - 38.27)
    assert rows[("RCAN", "set14_x2")].note == "not evaluated"
    assert ("RCAN", "average") not in rows  # the paper states no average over the five sets
    plain_y = {(r.method, r.benchmark): r for r in comparison_rows("sr_x2", ours_x2, "y_channel")}
    assert plain_y[("RCAN", "set5_x2")].diff_psnr is None  # no border crop: another PSNR
    assert setting_of("sr_x3") == "sr_x3" and setting_of("sr") is None

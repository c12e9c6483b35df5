"""``src.restore`` round trips: what the network does not touch (mode, alpha, bit depth, orientation) survives.

The checkpoint holds a tiny Restormer whose output convolution is zero, so with its global residual the
network is exactly the identity and every round trip can be checked pixel for pixel.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import src.restore as restore_module
from src.data.io import orient
from src.inference.image_file import read_user_image
from src.restore import UnsafeOutputError, restore, summarise
from src.run.assemble import build_model
from src.run.from_checkpoint import run_config
from src.utils.errors import ConfigError, WriteError
from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = ["model=restormer_tiny", "model.backbone.dim=8"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """An identity tiny Restormer saved as a Lightning-style checkpoint and as a plain state dict."""
    folder = tmp_path_factory.mktemp("weights")
    cfg = compose("restore", TINY_MODEL, folder)
    model = build_model(cfg)
    with torch.no_grad():
        model.net.output.weight.zero_()
    ckpt = folder / "identity.ckpt"
    torch.save({"state_dict": model.state_dict(), "aioir_config": run_config(cfg)}, ckpt)
    state = folder / "identity.pt"
    torch.save(model.state_dict(), state)
    return {"ckpt": ckpt, "state": state}


def run(tmp_path: Path, source: Path, output: Path, *overrides: str, ckpt: Path | None = None):
    args = [f"input={source}", f"output={output}", "device=cpu", *overrides]
    if ckpt is not None:
        args.append(f"ckpt_path={ckpt}")
    return restore(compose("restore", args, tmp_path / "run"))


def pattern(height: int, width: int, channels: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    peak = np.iinfo(dtype).max
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, peak + 1, size=shape, dtype=np.int64).astype(dtype)


def test_grayscale_stays_grayscale(tmp_path, weights):
    pixels = pattern(37, 50, 1)
    Image.fromarray(pixels).save(tmp_path / "gray.png")
    report = run(tmp_path, tmp_path / "gray.png", tmp_path / "out", ckpt=weights["ckpt"])
    assert report.restored == [(tmp_path / "out" / "gray.png").resolve()]
    with Image.open(tmp_path / "out" / "gray.png") as out:
        assert out.mode == "L"
        np.testing.assert_array_equal(np.asarray(out), pixels)


def test_rgba_keeps_alpha_exactly(tmp_path, weights):
    pixels = pattern(30, 41, 4)
    Image.fromarray(pixels).save(tmp_path / "rgba.png")
    run(tmp_path, tmp_path / "rgba.png", tmp_path / "out", ckpt=weights["ckpt"])
    with Image.open(tmp_path / "out" / "rgba.png") as out:
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out), pixels)


def test_16bit_grayscale_png_stays_16bit(tmp_path, weights):
    pixels = pattern(33, 29, 1, np.uint16)
    Image.fromarray(pixels).save(tmp_path / "deep.png")
    run(tmp_path, tmp_path / "deep.png", tmp_path / "out", ckpt=weights["ckpt"])
    with Image.open(tmp_path / "out" / "deep.png") as out:
        assert out.mode.startswith("I")
        np.testing.assert_array_equal(np.asarray(out).astype(np.uint16), pixels)


def test_16bit_colour_png_with_alpha_stays_16bit(tmp_path, weights):
    pixels = pattern(24, 35, 4, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), pixels)  # stored BGRA; read back the same way
    run(tmp_path, tmp_path / "deep.png", tmp_path / "out", ckpt=weights["ckpt"])
    out = cv2.imread(str(tmp_path / "out" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, pixels)


def test_exif_rotated_jpeg_is_restored_upright(tmp_path, weights):
    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:10, :16] = 255  # a bright corner shows where "up" went
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=98)
    run(tmp_path, tmp_path / "photo.jpg", tmp_path / "out", ckpt=weights["ckpt"])
    with Image.open(tmp_path / "photo.jpg") as original:
        upright = np.asarray(ImageOps.exif_transpose(original)).astype(float)
    with Image.open(tmp_path / "out" / "photo.jpg") as out:
        assert out.getexif().get(0x0112, 1) == 1  # no rotation left for a viewer to apply twice
        restored = np.asarray(out).astype(float)
    assert restored.shape == upright.shape == (64, 40, 3)
    assert np.abs(restored - upright).mean() < 2.0  # JPEG re-encoding only
    assert restored[:16, -10:].mean() > 200 and restored[-16:, :10].mean() < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow(orientation):
    pixels = pattern(5, 7, 3)
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(img))
    np.testing.assert_array_equal(orient(pixels, orientation), expected)


def test_folder_with_unreadable_file_skips_it_by_name(tmp_path, weights, caplog):
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    Image.fromarray(pattern(20, 24, 3)).save(source / "good.png")
    Image.fromarray(pattern(20, 24, 3, seed=1)).save(source / "sub" / "nested.bmp")
    (source / "broken.jpg").write_bytes(b"not a jpeg at all")
    (source / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        report = run(tmp_path, source, tmp_path / "out", ckpt=weights["ckpt"])
    assert sorted(p.name for p in report.restored) == ["good.png", "nested.bmp"]
    assert (tmp_path / "out" / "sub" / "nested.bmp").is_file()
    assert list(report.skipped) == [source / "broken.jpg"]
    assert "broken.jpg" in caplog.text
    assert report.ignored == [source / "notes.txt"]
    assert not (tmp_path / "out" / "broken.jpg").exists()


@pytest.mark.parametrize("where", ["input folder", "input file's folder", "input file", "parent of input"])
def test_refuses_to_overwrite_the_input(tmp_path, weights, where):
    source = tmp_path / "photos"
    source.mkdir()
    Image.fromarray(pattern(16, 16, 3)).save(source / "a.png")
    before = (source / "a.png").read_bytes()
    target, output = {
        "input folder": (source, source),
        "input file's folder": (source / "a.png", source),
        "input file": (source / "a.png", source / "a.png"),
        "parent of input": (source, tmp_path),
    }[where]
    with pytest.raises(UnsafeOutputError):
        run(tmp_path, target, output, ckpt=weights["ckpt"])
    assert (source / "a.png").read_bytes() == before
    assert sorted(p.name for p in source.iterdir()) == ["a.png"]


def test_output_inside_the_input_folder_is_not_read_back(tmp_path, weights):
    source = tmp_path / "photos"
    (source / "restored").mkdir(parents=True)
    Image.fromarray(pattern(16, 16, 3)).save(source / "a.png")
    Image.fromarray(pattern(16, 16, 3)).save(source / "restored" / "old.png")
    report = run(tmp_path, source, source / "restored", ckpt=weights["ckpt"])
    assert [p.name for p in report.restored] == ["a.png"]


def test_output_folder_is_created_and_pretrained_weights_work(tmp_path, weights):
    pixels = pattern(19, 23, 3)
    Image.fromarray(pixels).save(tmp_path / "a.webp", lossless=True)
    output = tmp_path / "new" / "deeper"
    report = run(tmp_path, tmp_path / "a.webp", output, *TINY_MODEL, f"model.pretrained={weights['state']}",
                 "format=png")
    assert output.is_dir() and report.restored == [(output / "a.png").resolve()]
    np.testing.assert_array_equal(np.asarray(Image.open(output / "a.png")), pixels)


def test_large_image_tiled_with_a_trained_like_network(tmp_path, weights):
    Image.fromarray(pattern(70, 90, 3)).save(tmp_path / "big.tif")
    run(tmp_path, tmp_path / "big.tif", tmp_path / "out", "inference=tiled", "inference.tile=32",
        "inference.overlap=8", ckpt=weights["ckpt"])
    image = read_user_image(tmp_path / "out" / "big.tif")
    assert image.rgb.shape == (70, 90, 3)
    np.testing.assert_allclose(image.rgb, read_user_image(tmp_path / "big.tif").rgb, atol=1 / 255)


def test_without_weights_it_refuses(tmp_path):
    Image.fromarray(pattern(8, 8, 3)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="ckpt_path"):
        run(tmp_path, tmp_path / "a.png", tmp_path / "out", *TINY_MODEL)


@pytest.mark.slow  # a fresh Python process: ~5-10 s on 2 cores
def test_command_line(tmp_path, weights):
    Image.fromarray(pattern(20, 20, 3)).save(tmp_path / "a.jpg")
    proc = subprocess.run(
        [sys.executable, "-m", "src.restore", f"ckpt_path={weights['ckpt']}", f"input={tmp_path / 'a.jpg'}",
         f"output={tmp_path / 'out'}", f"paths.log_dir={tmp_path / 'logs'}", "device=cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "restored 1 image(s)" in proc.stdout
    assert (tmp_path / "out" / "a.jpg").is_file()
    refused = subprocess.run(
        [sys.executable, "-m", "src.restore", f"ckpt_path={weights['ckpt']}", f"input={tmp_path / 'a.jpg'}",
         f"output={tmp_path}", f"paths.log_dir={tmp_path / 'logs'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode == 2 and "overwrite" in refused.stderr


def test_two_inputs_with_one_output_name_are_refused(tmp_path, weights):
    Image.fromarray(pattern(8, 8, 3)).save(tmp_path / "a.png")
    Image.fromarray(pattern(8, 8, 3)).save(tmp_path / "a.bmp")
    with pytest.raises(ValueError, match="both be written"):
        run(tmp_path, tmp_path, tmp_path / "out", "format=png", ckpt=weights["ckpt"])


def test_a_symlink_loop_and_a_dangling_link_are_skipped_by_name(tmp_path, weights):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(pattern(16, 16, 3)).save(source / "good.png")
    (source / "loop_a.png").symlink_to(source / "loop_b.png")
    (source / "loop_b.png").symlink_to(source / "loop_a.png")
    (source / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    report = run(tmp_path, source, tmp_path / "out", ckpt=weights["ckpt"])
    assert [p.name for p in report.restored] == ["good.png"]
    assert report.skipped == {source / "gone.jpg": "symbolic link to a file that does not exist",
                              source / "loop_a.png": "symbolic link loop", source / "loop_b.png": "symbolic link loop"}
    assert "loop_a.png: symbolic link loop" in summarise(report)


def test_an_animated_image_is_restored_as_its_first_frame_and_says_so(tmp_path, weights):
    frames = [Image.fromarray(pattern(16, 20, 3, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    report = run(tmp_path, tmp_path / "anim.png", tmp_path / "out", ckpt=weights["ckpt"])
    assert report.notes == {tmp_path / "anim.png": "3 frames (animated or multi-page): restored the first frame only"}
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "anim.png")), np.asarray(frames[0]))
    assert "restored the first frame only" in summarise(report)


def test_files_that_are_not_images_are_named(tmp_path, weights):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(pattern(16, 16, 3)).save(source / "a.png")
    for i in range(12):
        (source / f"notes{i:02d}.txt").write_text("x")
    text = summarise(run(tmp_path, source, tmp_path / "out", ckpt=weights["ckpt"]))
    assert "ignored 12 file(s) that are not images" in text
    assert f"{source / 'notes00.txt'}, " in text and "... and 2 more" in text


def test_a_read_only_output_folder_fails_before_the_model_loads(tmp_path, weights, monkeypatch):
    import errno
    import os

    Image.fromarray(pattern(8, 8, 3)).save(tmp_path / "a.png")
    output = tmp_path / "ro"
    output.mkdir()
    output.chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: refuse as the kernel would for anyone else
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr("src.restore.tempfile.TemporaryFile", refuse)
    monkeypatch.setattr("src.restore.load_restorer", lambda *a, **k: pytest.fail("loaded the model first"))
    try:
        with pytest.raises(WriteError, match=rf"output={output} cannot be written to: Permission denied"):
            run(tmp_path, tmp_path / "a.png", output, ckpt=weights["ckpt"])
    finally:
        output.chmod(0o700)


def test_cpu_out_of_memory_names_the_image_and_suggests_tiling(tmp_path, weights, monkeypatch):
    Image.fromarray(pattern(8, 8, 3)).save(tmp_path / "a.png")

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 922337203685 bytes.")

    monkeypatch.setattr("src.restore.infer", no_memory)
    with pytest.raises(ConfigError, match=r"out of memory restoring .*a\.png on cpu: tile it \(inference=tiled"):
        run(tmp_path, tmp_path / "a.png", tmp_path / "out", ckpt=weights["ckpt"])


def test_the_automatic_tiling_threshold_follows_the_memory_available(tmp_path, weights, monkeypatch):
    """max_pixels=auto: an image above the always-whole size runs whole with plenty of memory and is tiled with
    little (that size lowered from 512x512 to 32x32 so the test image stays small)."""
    import src.inference.memory_budget as budget

    monkeypatch.setattr("src.inference.config.AUTO_WHOLE_PIXELS", 32 * 32)
    Image.fromarray(pattern(60, 60, 3)).save(tmp_path / "big.png")
    sizes = []
    real_infer = restore_module.infer

    def spy(model, x, multiple, options):
        sizes.append(options.tile_for(*x.shape[-2:]))
        return real_infer(model, x, multiple, options)

    monkeypatch.setattr("src.restore.infer", spy)
    monkeypatch.setattr(budget, "bytes_per_pixel", lambda *a: 2**20)  # 1 MiB per pixel
    for free, expected in ((2**33, None), (2**30, 48)):  # 0.5 * free / 1 MiB: 4096 (whole) or 512 pixels (tiled)
        monkeypatch.setattr(budget, "available_bytes", lambda device, free=free: free)
        run(tmp_path, tmp_path / "big.png", tmp_path / f"out{free}", "inference.auto_tile=48", ckpt=weights["ckpt"])
        assert sizes[-1] == expected


def test_memory_per_pixel_is_measured_and_grows_with_the_network():
    import src.inference.memory_budget as budget
    from src.utils.memory import cpu_peak_resettable

    if not cpu_peak_resettable():
        pytest.skip("the kernel does not let this process reset its peak RSS")
    narrow, wide = (torch.nn.Conv2d(3, c, 3, padding=1) for c in (8, 256))
    cpu = torch.device("cpu")
    assert 0 < budget.bytes_per_pixel(narrow, cpu) < budget.bytes_per_pixel(wide, cpu)
    assert budget.bytes_per_pixel(wide, cpu) >= 256 * 4  # at least its output, float32
    assert budget.available_bytes(cpu) > 0


def test_each_image_gives_a_plain_progress_line(tmp_path, weights, caplog):
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        Image.fromarray(pattern(8, 8, 3, seed=i)).save(source / f"{i}.png")
    with caplog.at_level(logging.INFO, logger="src.restore"):
        run(tmp_path, source, tmp_path / "out", ckpt=weights["ckpt"])
    lines = [r.getMessage() for r in caplog.records if "images," in r.getMessage()]
    assert [line.split(",")[0] for line in lines] == ["1 of 3 images", "2 of 3 images", "3 of 3 images"]


def test_an_instruction_guided_model_restores_what_the_instruction_names(tmp_path):
    torch.manual_seed(0)
    model = build_model(compose("train", ["model=instructir_tiny"], tmp_path)).eval()
    with torch.no_grad():  # make the instruction matter (at initialisation every ICB is the identity)
        for block in [*model.net.enc_cond, *model.net.dec_cond]:
            block.gamma.normal_()
            block.beta.normal_()
    x = torch.rand(2, 3, 20, 24)
    rain = restore_module.conditioned(model, "Remove the rain, please")
    haze = restore_module.conditioned(model, "it is foggy")
    with torch.no_grad():
        expected = model(x, condition=model.instruction.for_families(["rain", "rain"])[0])
        assert torch.allclose(rain(x), expected, atol=1e-6)
        assert not torch.allclose(haze(x), expected, atol=1e-3)
    with pytest.raises(ConfigError, match="restores by instruction: set instruction="):
        restore_module.conditioned(model, None)
    with pytest.raises(ConfigError, match="names no family"):
        restore_module.conditioned(model, "make it pretty")
    plain = build_model(compose("train", ["model=restormer_tiny"], tmp_path))
    with pytest.raises(ConfigError, match="takes no instruction"):
        restore_module.conditioned(plain, "remove the rain")


def test_a_network_with_derived_inputs_gets_them_from_the_whole_image_before_tiling(tmp_path):
    """Water-Net reads the image with its white-balanced, contrast-enhanced and gamma-corrected versions: made
    once from the whole photograph (tiles would each balance their own colours), then tiled."""
    from src.data.underwater import water_net_inputs

    cfg = compose("restore", ["model=water_net_tiny"], tmp_path / "w")
    torch.manual_seed(0)
    model = build_model(cfg)
    ckpt = tmp_path / "water.ckpt"
    torch.save({"state_dict": model.state_dict(), "aioir_config": run_config(cfg)}, ckpt)
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(pattern(40, 52, 3)).save(source / "a.png")
    run(tmp_path, source, tmp_path / "out", "inference=tiled", "inference.tile=32", "inference.overlap=16",
        ckpt=ckpt)
    restored = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert restored.shape == (40, 52, 3)
    image = torch.from_numpy(pattern(40, 52, 3)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        whole = model.net.eval()(water_net_inputs(image)[None])[0][0].clamp(0, 1)
    expected = (whole.permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(restored.astype(float) - expected).max() <= 1  # tiles of the whole image's inputs agree

"""Peak memory of restoring a 3840x2160 image on CPU with the paper-size Restormer: tiled vs whole image.

Question: does tiled inference (tile 256, overlap 32) keep a 4K image within a laptop's memory, and what would
the whole image need? The whole image is not run at 4K (it would need tens of GB); its need is extrapolated
from whole-image runs at small sizes, where Restormer's memory grows linearly with the pixel count (its
attention is across channels, so nothing grows with the square of the pixel count).

Each measurement runs in a fresh process and reports that process's peak resident set size (``ru_maxrss``),
so one measurement never inherits another's peak.

    OMP_NUM_THREADS=1 python experiments/inference_memory/measure.py            # full size: ~45 min on 1 core
    python experiments/inference_memory/measure.py --height 300 --width 500      # smoke test
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: whole-image sizes used for the extrapolation (square sides)
WHOLE_SIDES = (256, 384, 512)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(height: int, width: int, tile: int | None, overlap: int, threads: int) -> dict:
    """Restore one random image in this process; returns memory (MiB) and time."""
    import torch

    from src.inference.config import InferenceConfig
    from src.inference.tiling import infer
    from src.models.backbones.restormer import Restormer

    torch.set_num_threads(threads)
    net = Restormer().eval()  # paper size: 26.13M parameters
    image = torch.rand(1, 3, height, width)
    after_model = _rss_mib()
    options = InferenceConfig(tile=tile, overlap=overlap, max_pixels=None)
    start = time.monotonic()
    with torch.inference_mode():
        out = infer(lambda x: net(x)[0], image, net.multiple, options)
    seconds = time.monotonic() - start
    assert out.shape == image.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"height": height, "width": width, "tile": tile, "overlap": overlap, "threads": threads,
            "rss_after_model_mib": after_model, "peak_rss_mib": peak, "seconds": seconds}


def measure(height: int, width: int, tile: int | None, overlap: int, threads: int) -> dict:
    args = [sys.executable, __file__, "--child", "--height", str(height), "--width", str(width),
            "--overlap", str(overlap), "--threads", str(threads)]
    args += ["--whole"] if tile is None else ["--tile", str(tile)]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {height}x{width} tile={tile} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--width", type=int, default=3840)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tile = None if args.whole else args.tile
        print(json.dumps(child(args.height, args.width, tile, args.overlap, args.threads)))
        return

    whole = [measure(side, side, None, args.overlap, args.threads) for side in WHOLE_SIDES]
    base, per_pixel = fit_line([r["height"] * r["width"] for r in whole], [r["peak_rss_mib"] for r in whole])
    pixels = args.height * args.width
    estimate = base + per_pixel * pixels
    tiled = measure(args.height, args.width, args.tile, args.overlap, args.threads)
    summary = {
        "image": f"{args.width}x{args.height}",
        "tiled": tiled,
        "whole_runs": whole,
        "whole_fit": {"base_mib": base, "kib_per_pixel": per_pixel * 1024},
        "whole_estimate_mib": estimate,
        "ratio_whole_to_tiled": estimate / tiled["peak_rss_mib"],
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"tiled (tile {args.tile}, overlap {args.overlap}): peak RSS {tiled['peak_rss_mib']:.0f} MiB "
          f"in {tiled['seconds']:.0f} s")
    print(f"whole image, extrapolated: {estimate:.0f} MiB ({base:.0f} MiB + {per_pixel * 1024:.2f} KiB/pixel)")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

"""``python -m src.analysis.perception``: the perception-distortion plane (Blau and Michaeli, 2018) of several
evaluated runs: one point per run, PSNR (distortion, higher is better) against a perceptual quantity (NIQE or
LPIPS, lower is better), both averaged over the run's benchmarks as its ``metrics.json`` records them.

    python -m src.eval ckpt_path=A/last.ckpt metrics.niqe=true      # each run to place, with the quantity on
    python -m src.analysis.perception logs/eval/runs/<A> logs/eval/runs/<B> --quantity niqe --out pd.png

Runs are labelled by ``--labels`` or by what their record says they evaluated (checkpoint or weights file).
A run whose record lacks the quantity is named and left out. Writes the PNG and prints the points as a table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUANTITIES = ("niqe", "lpips")


def read_point(run: Path, quantity: str) -> dict[str, Any] | None:
    """``{label, psnr, <quantity>, input_psnr, input_<quantity>}`` of a run folder (or a metrics.json), or
    ``None`` where its record has no such quantity."""
    path = run / "metrics.json" if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no metrics.json (a run folder of src.eval or src.train)")
    record = json.loads(path.read_text())
    average = record.get("average", {})
    if quantity not in average or not math.isfinite(float(average[quantity])):
        return None
    source = record.get("checkpoint") or record.get("pretrained") or path.parent.name
    label = "untrained" if record.get("untrained") else Path(str(source)).parent.parent.name or str(source)
    return {"label": label, "run": str(path.parent), "psnr": float(average["psnr"]), quantity: float(average[quantity]),
            "input_psnr": float(average.get("input_psnr", math.nan)),
            f"input_{quantity}": float(average.get(f"input_{quantity}", math.nan))}


def plot(points: Sequence[dict[str, Any]], quantity: str, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for point in points:
        ax.scatter(point["psnr"], point[quantity], s=40)
        ax.annotate(point["label"], (point["psnr"], point[quantity]), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    inputs = [p for p in points if math.isfinite(p["input_psnr"]) and math.isfinite(p[f"input_{quantity}"])]
    if inputs:  # the degraded inputs, for scale (the same for every run of one data setting)
        ax.scatter([inputs[0]["input_psnr"]], [inputs[0][f"input_{quantity}"]], marker="x", color="grey",
                   label="degraded input")
        ax.legend()
    ax.set_xlabel("PSNR (dB), higher is better")
    ax.set_ylabel(f"{quantity.upper()}, lower is better")
    ax.set_title("perception-distortion plane (mean over benchmarks)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.analysis.perception", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or metrics.json files) of src.eval")
    parser.add_argument("--quantity", choices=QUANTITIES, default="niqe")
    parser.add_argument("--labels", nargs="*", default=None, help="one label per run (default: from the records)")
    parser.add_argument("--out", type=Path, default=Path("perception_distortion.png"))
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        parser.error(f"--labels gives {len(args.labels)} labels for {len(args.runs)} runs")
    points = []
    for i, run in enumerate(args.runs):
        try:
            point = read_point(run, args.quantity)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        if point is None:
            print(f"{run}: its record has no {args.quantity} (evaluate with metrics.{args.quantity}=...): left out")
            continue
        if args.labels:
            point["label"] = args.labels[i]
        points.append(point)
    if not points:
        print(f"error: no run has {args.quantity}", file=sys.stderr)
        raise SystemExit(2)
    plot(points, args.quantity, args.out)
    print(f"| run | PSNR | {args.quantity.upper()} |\n|---|---|---|")
    for point in points:
        print(f"| {point['label']} | {point['psnr']:.2f} | {point[args.quantity]:.4f} |")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()

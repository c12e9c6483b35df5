"""Figures of experiments/strategies/README.md from the runs' metrics.csv (CSV logger), with a picture each.

    python experiments/strategies/summarise.py art  logs/art_evidence/runs/<time>  experiments/strategies/art.png
    python experiments/strategies/summarise.py dcpt logs/dcpt_evidence/runs/<time> experiments/strategies/dcpt.png

art: each family's Art weight in the batches that had it (mean over the run's second half) beside how far its
tracked L1 fell (mean of the first and last tenth of the logged steps); dcpt: the classifier's training
accuracy over the steps against chance. Prints a Markdown table and writes the PNG.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np


def read(run: Path) -> list[dict[str, str]]:
    (path,) = sorted(run.glob("csv/*/metrics.csv"))[-1:]
    return list(csv.DictReader(path.open()))


def series(rows: list[dict[str, str]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
    steps, values = zip(*pairs) if pairs else ((), ())
    return np.array(steps), np.array(values)


def smooth(values: np.ndarray, width: int = 9) -> np.ndarray:
    width = max(1, min(width, len(values)))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def art(run: Path, picture: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read(run)
    families = sorted(k.rsplit("/", 1)[-1] for k in rows[0] if k.startswith("train/art/weight/"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    print("| family | tracked L1, first tenth | last tenth | fell by | mean weight when present, second half |")
    print("|---|---|---|---|---|")
    for family in families:
        steps, weights = series(rows, f"train/art/weight/{family}")
        lsteps, losses = series(rows, f"train/art/loss/{family}")
        tenth = max(1, len(losses) // 10)
        first, last = losses[:tenth].mean(), losses[-tenth:].mean()
        # the weight of the batches that had the family (a family absent from a batch is logged at weight 0)
        present = np.isin(steps, lsteps)
        steps, weights = steps[present], weights[present]
        half = weights[len(weights) // 2:].mean()
        print(f"| {family} | {first:.4f} | {last:.4f} | {100 * (1 - last / first):.0f}% | {half:.3f} |")
        left.plot(steps[: len(smooth(weights))], smooth(weights), label=family)
        right.plot(lsteps[: len(smooth(losses))], smooth(losses), label=family)
    left.set(title="Art weight per family when present (moving mean of 9)", xlabel="step", ylabel="weight")
    right.set(title="tracked L1 per family", xlabel="step", ylabel="L1", yscale="log")
    left.legend()
    fig.tight_layout()
    fig.savefig(picture, dpi=110)


def dcpt(run: Path, picture: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read(run)
    steps, accuracy = series(rows, "train/dcpt/accuracy")
    families = 5
    tenth = max(1, len(accuracy) // 10)
    print(f"accuracy: first tenth {accuracy[:tenth].mean():.3f}, last tenth {accuracy[-tenth:].mean():.3f}, "
          f"chance {1 / families:.3f} ({len(accuracy)} logged steps)")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps[: len(smooth(accuracy))], smooth(accuracy), label="training accuracy (moving mean of 9)")
    ax.axhline(1 / families, color="grey", linestyle="--", label="chance")
    ax.set(title="DCPT: degradation classification from the network's features", xlabel="step",
           ylabel="accuracy", ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(picture, dpi=110)


if __name__ == "__main__":
    kind, run, picture = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"art": art, "dcpt": dcpt}[kind](run, picture)

"""One picture per feature position: the t-SNE of the images' features coloured by family, and the confusion
matrix of the kNN probe (matplotlib, written atomically as PNG)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from src.analysis.probe_metrics import ProbeResult  # noqa: E402
from src.utils.atomic import write_bytes_atomic  # noqa: E402


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the rows (perplexity scaled to the number of images)."""
    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def write_figure(path: Path, features: np.ndarray, labels: list[str], result: ProbeResult, title: str) -> Path:
    points = embed(features)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
    names = np.asarray(labels)
    for family in result.classes:
        chosen = names == family
        left.scatter(points[chosen, 0], points[chosen, 1], s=10, label=family)
    left.set_title(f"{title}: t-SNE of the features")
    left.legend(fontsize=8, markerscale=1.5)
    left.set_xticks([])
    left.set_yticks([])
    matrix = np.asarray(result.confusion)
    right.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
    right.set_xticks(range(len(result.classes)), result.classes, rotation=45, ha="right")
    right.set_yticks(range(len(result.classes)), result.classes)
    for (i, j), value in np.ndenumerate(matrix):
        right.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                   color="white" if value > 0.5 else "black")
    knn = result.as_dict()["knn"]
    right.set_title(f"kNN (k=5) {knn['mean']:.1%} +- {knn['std']:.1%}: true (rows) vs predicted")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return write_bytes_atomic(path, buffer.getvalue())

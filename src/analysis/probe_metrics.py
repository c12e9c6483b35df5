"""Does a feature tell the degradations apart? DCPT's kNN protocol and a linear probe, on scikit-learn.

kNN (DCPT, Hu et al. 2024): k = 5 neighbours, a third of the images held out (stratified), five seeds; the mean
and spread of the held-out accuracy. The linear probe is a logistic regression on standardised features, on the
same splits. The confusion matrix sums the kNN predictions of all seeds, each row normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass
class ProbeResult:
    """Accuracies per seed, their mean and spread, and the row-normalised confusion matrix (kNN)."""

    knn: list[float]
    linear: list[float]
    classes: list[str]
    confusion: list[list[float]] = field(default_factory=list)

    @staticmethod
    def _stats(values: list[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    def as_dict(self) -> dict:
        return {"knn": {**self._stats(self.knn), "per_seed": self.knn},
                "linear": {**self._stats(self.linear), "per_seed": self.linear},
                "classes": self.classes, "confusion": self.confusion}


def probe(features: np.ndarray, labels: list[str], k: int = 5, holdout: float = 1 / 3, seeds: int = 5) -> ProbeResult:
    """kNN and linear-probe accuracy over ``seeds`` stratified splits."""
    y = np.asarray(labels)
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least two families, got {classes}")
    knn, linear = [], []
    matrix = np.zeros((len(classes), len(classes)))
    for seed in range(seeds):
        train_x, test_x, train_y, test_y = train_test_split(features, y, test_size=holdout, stratify=y,
                                                            random_state=seed)
        neighbours = KNeighborsClassifier(n_neighbors=min(k, len(train_y))).fit(train_x, train_y)
        predicted = neighbours.predict(test_x)
        knn.append(float(np.mean(predicted == test_y)))
        matrix += confusion_matrix(test_y, predicted, labels=classes)
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train_x, train_y)
        linear.append(float(logistic.score(test_x, test_y)))
    rows = matrix.sum(axis=1, keepdims=True)
    return ProbeResult(knn, linear, classes, (matrix / np.maximum(rows, 1)).round(4).tolist())

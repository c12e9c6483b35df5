"""The published numbers of the 3deg/5deg settings, and our results set against them.

The numbers live in ``published.yaml`` beside this file (copied from ``shared/design/PROTOCOLS.md``). A
comparison says which differences are meaningful: PSNR and SSIM are compared only when our metric protocol
computes the same quantity as the paper's (MoCE-IR's Gaussian SSIM is not PromptIR's uniform SSIM; Y-channel
PSNR is not RGB PSNR); otherwise the difference is left empty and the row says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

PUBLISHED_FILE = Path(__file__).with_name("published.yaml")
#: what each protocol's PSNR is computed on: protocols with the same kind give the same PSNR
PSNR_KIND = {"promptir": "rgb", "gaussian_ssim": "rgb", "y_channel": "y", "sr": "y_border_cropped"}
AVERAGE = "average"


@dataclass(frozen=True)
class Score:
    psnr: float | None
    ssim: float | None


@dataclass(frozen=True)
class Method:
    name: str
    protocol: str
    results: dict[str, Score]
    average: Score | None
    params: float | None = None  # millions
    note: str = ""


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    benchmarks: dict[str, str]  # our benchmark name -> the paper's column label
    methods: dict[str, Method] = field(default_factory=dict)


@dataclass(frozen=True)
class ComparisonRow:
    """One cell pair of the comparison table: our score and a method's published one for a benchmark."""

    method: str
    benchmark: str  # our benchmark name, or "average"
    label: str  # the paper's column name
    ours_psnr: float | None
    published_psnr: float | None
    diff_psnr: float | None  # ours - published, when both exist and are the same quantity
    ours_ssim: float | None
    published_ssim: float | None
    diff_ssim: float | None
    note: str = ""


def _score(pair: list[float | None] | None) -> Score | None:
    if pair is None:
        return None
    psnr, ssim = pair
    return Score(None if psnr is None else float(psnr), None if ssim is None else float(ssim))


@cache
def load_published(path: Path = PUBLISHED_FILE) -> dict[str, Setting]:
    """All settings of ``published.yaml``, keyed by setting name (``3deg``, ``5deg``)."""
    raw = yaml.safe_load(Path(path).read_text())
    settings = {}
    for name, entry in raw.items():
        methods = {
            method: Method(
                name=method,
                protocol=spec["protocol"],
                results={b: _score(v) for b, v in (spec.get("results") or {}).items()},
                average=_score(spec.get("average")),
                params=spec.get("params"),
                note=spec.get("note", ""),
            )
            for method, spec in entry["methods"].items()
        }
        unknown = {b for m in methods.values() for b in m.results} - set(entry["benchmarks"])
        if unknown:
            raise ValueError(f"{path}: setting {name} lists results for unknown benchmarks {sorted(unknown)}")
        settings[str(name)] = Setting(str(name), entry["description"], dict(entry["benchmarks"]), methods)
    return settings


def setting_of(data_name: str | None) -> str | None:
    """The published setting a data config reproduces (``3deg``, ``5deg``), or ``None`` (e.g. synthetic data)."""
    return data_name if data_name in load_published() else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _diff(ours: float | None, published: float | None, comparable: bool) -> float | None:
    return ours - published if comparable and ours is not None and published is not None else None


def _our_score(results: Mapping[str, Mapping[str, float]], benchmark: str) -> tuple[float | None, float | None]:
    row = results.get(benchmark, {})
    return _finite(row.get("psnr")), _finite(row.get("ssim"))


def _our_average(setting: Setting, results: Mapping[str, Mapping[str, float]], key: str) -> float | None:
    values = [_finite(results.get(b, {}).get(key)) for b in setting.benchmarks]
    return None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[arg-type]


def comparison_rows(
    setting: str,
    results: Mapping[str, Mapping[str, float]],
    protocol: str,
    methods: Iterable[str] | None = None,
    refused: Mapping[str, str] | None = None,
) -> list[ComparisonRow]:
    """Rows of ours vs each published method, per benchmark of ``setting`` and for the average.

    ``results`` is ``metrics.json``'s ``benchmarks`` (benchmark -> {"psnr", "ssim", ...}) measured under
    ``protocol``. Our average is taken over the setting's benchmarks only, and only when all are present,
    because a published average covers exactly those columns. Methods without per-benchmark numbers get
    the average row only. ``refused`` (benchmark -> why) are benchmarks whose data is not the published set:
    they, and an average over them, are compared with nothing.
    """
    refused = dict(refused or {})
    results = {b: row for b, row in results.items() if b not in refused}
    spec = load_published()[setting]
    chosen = list(spec.methods) if methods is None else list(methods)
    unknown = sorted(set(chosen) - set(spec.methods))
    if unknown:
        raise KeyError(f"no published {setting} numbers for {unknown}; available: {list(spec.methods)}")
    ours = {b: _our_score(results, b) for b in spec.benchmarks}
    ours[AVERAGE] = (_our_average(spec, results, "psnr"), _our_average(spec, results, "ssim"))
    missing = [b for b in spec.benchmarks if b not in results]
    rows = []
    for name in chosen:
        method = spec.methods[name]
        same_psnr = PSNR_KIND.get(protocol) is not None and PSNR_KIND.get(protocol) == PSNR_KIND.get(method.protocol)
        same_ssim = protocol == method.protocol
        notes = [] if same_ssim else [f"published under {method.protocol}, ours under {protocol}"]
        cells = [(b, method.results.get(b)) for b in spec.benchmarks if method.results] + [(AVERAGE, method.average)]
        for benchmark, published in cells:
            if published is None:
                continue
            (our_psnr, our_ssim) = ours[benchmark]
            note = list(notes)
            if benchmark == AVERAGE and missing:
                note.append(f"our average needs {', '.join(missing)}")
            elif benchmark != AVERAGE and benchmark in refused:
                note.append(f"not the published set: {refused[benchmark]}")
            elif benchmark != AVERAGE and benchmark in missing:
                note.append("not evaluated")
            if benchmark == AVERAGE and method.note:
                note.append(method.note)
            rows.append(
                ComparisonRow(
                    method=name,
                    benchmark=benchmark,
                    label=spec.benchmarks.get(benchmark, "average"),
                    ours_psnr=our_psnr,
                    published_psnr=published.psnr,
                    diff_psnr=_diff(our_psnr, published.psnr, same_psnr),
                    ours_ssim=our_ssim,
                    published_ssim=published.ssim,
                    diff_ssim=_diff(our_ssim, published.ssim, same_ssim),
                    note="; ".join(note),
                )
            )
    return rows

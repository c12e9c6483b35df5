"""LED's physics-based noise model of a dark RAW capture, and its virtual cameras.

A clean packed frame (black level removed, normalised by ``white - black``, clipped to [0, 1]) is dimmed by the
exposure ratio into digital numbers (DN), ``x = gt * (white - black) / ratio``, and the noise of a capture of
that little light is added in DN, in LED's order (``noise_type`` letters, "ptrqc" by default):

* ``p`` shot noise: ``K * Poisson(x / K) - x`` (``K``: the system gain, DN per electron);
* ``t`` read noise of the Tukey-lambda distribution, ``sigma * (U**lam - (1-U)**lam) / lam`` (its quantile
  function), or ``g`` Gaussian read noise ``sigma * N(0, 1)``;
* ``r`` row noise: one Gaussian value per row of the full-resolution mosaic, so that, packed, R and G1 share
  the even rows' values and B and G2 the odd rows';
* ``q`` quantisation noise, uniform on [-0.5, 0.5) DN;
* ``c`` colour bias: a constant per packed plane, looked up by the camera and the bin of ``K``.

The noisy frame is brought back up by the ratio, ``lq = min((x + noise) / (white - black) * ratio, 1)``
(negative values are kept, as in LED). ``K`` is drawn log-uniformly per image, and the read and row noise
scales follow the log-linear relation ``log sigma ~ N(slope * log K + bias, spread)`` whose slope, bias and
spread belong to the camera: a *virtual camera* is one such set of parameters, taken from LED's ranges
(:func:`sample_virtual_cameras`, "coverage": evenly spread over each range, camera ``i`` taking the ``i``-th
point of every range, as LED's pre-training does). Two quirks of LED's colour biases are kept so that
its predefined cameras behave the same here: the bias spreads are indexed by the camera (not by the K bin),
and the K bins are linear while K is drawn log-uniformly (about half of the draws fall in the first bin).

Written in numpy so that the data pipeline synthesises each image from a generator keyed by the sample
(the same pixels in any worker or run); :func:`moments` gives the mean and variance the model implies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: LED's noise components, in the order they are added
COMPONENTS = {"p": "shot", "g": "Gaussian read", "t": "Tukey-lambda read", "r": "row", "q": "quantisation",
              "c": "colour bias"}
#: the bounds of U in the Tukey-lambda quantile function (LED's epsilon), keeping it finite
TUKEY_EPSILON = 1e-10

#: LED's parameter ranges of its virtual cameras (options/base/noise_g/noise_g_virtual.yaml)
LED_RANGES: dict[str, Any] = {
    "K": [0.1, 30.0],
    "Gaussian": {"slope": [0.5407496082896145, 0.6771267783987617],
                 "bias": [0.799410107756515, 2.079863926921898],
                 "sigma": [0.21408231874600314, 0.26751211630129734]},
    "TukeyLambda": {"slope": [0.46210495986526035, 0.6558756156508007],
                    "bias": [-0.09044499670414502, 1.5370438794284738],
                    "sigma": [0.23920060971003035, 0.3888189465002228],
                    "lambda": [-0.24285714285714288, 0.2]},
    "Row": {"slope": [0.44829219631519307, 0.7292220505388829],
            "bias": [-1.7977103277112132, -0.5917002648887661],
            "sigma": [0.2321799439489326, 0.29428813016491145]},
    "ColorBias": {"bias": [-1.9080039, 4.080531], "sigma": [0.006866596, 3.0379589], "count": 16},
}
#: the keys of LED's saved noise generator (``VirtualNoisyPairGenerator`` state dict) and our field for each
LED_STATE_KEYS = {"tukey_lambdas": "tukey_lambdas", "read_slopes": "read_slopes", "read_biases": "read_biases",
                  "read_sigmas": "read_spreads", "row_slopes": "row_slopes", "row_biases": "row_biases",
                  "row_sigmas": "row_spreads", "color_biases": "colour_biases"}


def check_noise_type(noise_type: str) -> str:
    """``noise_type`` in lower case, refusing unknown letters and asking for one read noise at most."""
    letters = noise_type.lower()
    unknown = sorted(set(letters) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"noise_type={noise_type!r}: unknown component(s) {unknown}; letters are "
                         + ", ".join(f"{k} ({v})" for k, v in COMPONENTS.items()))
    if "g" in letters and "t" in letters:
        raise ValueError(f"noise_type={noise_type!r}: choose one read noise, g (Gaussian) or t (Tukey-lambda)")
    return letters


@dataclass
class VirtualCameras:
    """The parameters of ``count`` virtual cameras (one entry per camera in each array)."""

    k_range: tuple[float, float]
    read_slopes: np.ndarray
    read_biases: np.ndarray
    read_spreads: np.ndarray
    row_slopes: np.ndarray
    row_biases: np.ndarray
    row_spreads: np.ndarray
    #: per camera; unused with Gaussian read noise
    tukey_lambdas: np.ndarray
    #: count x bins x 4 (DN), looked up by the linear bin of K
    colour_biases: np.ndarray
    noise_type: str = "ptrqc"
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.noise_type = check_noise_type(self.noise_type)
        count = len(self.read_slopes)
        for name in ("read_biases", "read_spreads", "row_slopes", "row_biases", "row_spreads", "tukey_lambdas"):
            if len(getattr(self, name)) != count:
                raise ValueError(f"virtual cameras: {name} has {len(getattr(self, name))} entries for {count} cameras")
        if self.colour_biases.ndim != 3 or self.colour_biases.shape[0] != count or self.colour_biases.shape[2] != 4:
            raise ValueError(f"virtual cameras: colour_biases must be {count} x bins x 4, got "
                             f"{self.colour_biases.shape}")
        if "t" in self.noise_type and np.any(self.tukey_lambdas == 0):
            raise ValueError("virtual cameras: a Tukey-lambda shape of 0 (the logistic limit) is not LED's model")
        if not 0 < self.k_range[0] < self.k_range[1]:
            raise ValueError(f"virtual cameras: K range {self.k_range} must be 0 < min < max")
        self.names = self.names or [f"IC{i}" for i in range(count)]

    def __len__(self) -> int:
        return len(self.read_slopes)

    def as_state(self) -> dict[str, np.ndarray]:
        """The parameters under LED's state-dict names (what its ``noise_g.pth`` holds)."""
        state = {led: np.asarray(getattr(self, ours)) for led, ours in LED_STATE_KEYS.items()}
        state["k_range"] = np.asarray(self.k_range)
        return state

    @classmethod
    def from_led_file(cls, path: str | Path, noise_type: str = "ptrqc") -> VirtualCameras:
        """LED's saved virtual cameras (``pretrained/noise_g/VirtualNoisyPairGenerator_*.pth``, a state dict; read
        without unpickling code)."""
        import torch

        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"virtual cameras file {file} does not exist (LED's noise_g .pth, e.g. "
                                    "pretrained/noise_g/VirtualNoisyPairGenerator_ELD_ptrqc_5VirtualCameras.pth)")
        state = torch.load(file, map_location="cpu", weights_only=True)
        state = state.get("params", state) if isinstance(state, Mapping) else state
        missing = [key for key in LED_STATE_KEYS if key not in state]
        if "t" not in noise_type:
            missing = [key for key in missing if key != "tukey_lambdas"]
        if missing:
            raise ValueError(f"{file}: not an LED noise generator state (missing {missing}; has {sorted(state)})")
        values = {ours: state[led].double().numpy() for led, ours in LED_STATE_KEYS.items() if led in state}
        values.setdefault("tukey_lambdas", np.ones(len(values["read_slopes"])))
        k_range = state["k_range"].tolist() if "k_range" in state else LED_RANGES["K"]
        return cls(k_range=(float(k_range[0]), float(k_range[1])), noise_type=noise_type, **values)


def _spread(count: int, bounds: list[float], strategy: str, rng: np.random.Generator) -> np.ndarray:
    low, high = float(bounds[0]), float(bounds[1])
    if strategy == "coverage":
        return np.array([low + (high - low) * i / max(count - 1, 1) for i in range(count)])
    return rng.uniform(low, high, size=count)


def sample_virtual_cameras(count: int = 5, ranges: Mapping[str, Any] | None = None, noise_type: str = "ptrqc",
                           strategy: str = "coverage", shuffle: bool = False, seed: int = 0) -> VirtualCameras:
    """``count`` virtual cameras from LED's ``ranges`` (default :data:`LED_RANGES`).

    ``strategy``: ``coverage`` (evenly spaced over each range, LED's pre-training) or ``uniform`` (random
    draws); ``shuffle`` permutes each parameter's values apart (LED's flag). The colour biases are random in
    either case (from ``seed``); LED's own draws are in its saved file (:meth:`VirtualCameras.from_led_file`)."""
    if strategy not in ("coverage", "uniform"):
        raise ValueError(f"virtual camera strategy must be 'coverage' or 'uniform', got {strategy!r}")
    if count < 1:
        raise ValueError(f"virtual camera count must be >= 1, got {count}")
    noise_type = check_noise_type(noise_type)
    ranges = dict(LED_RANGES if ranges is None else ranges)
    rng = np.random.default_rng(seed)

    def values(bounds: list[float]) -> np.ndarray:
        out = _spread(count, bounds, strategy, rng)
        return rng.permutation(out) if shuffle else out

    read = ranges["Gaussian"] if "g" in noise_type else ranges["TukeyLambda"]
    lambdas = values(ranges["TukeyLambda"]["lambda"]) if "t" in noise_type else np.ones(count)
    read_params = [values(read[key]) for key in ("slope", "bias", "sigma")]
    row = ranges["Row"]
    row_params = [values(row[key]) for key in ("slope", "bias", "sigma")]
    colour = ranges["ColorBias"]
    bins = int(colour["count"])
    # LED's split with 10% overlap; its intervals start at 0 (the range's low end is not added) and camera i
    # takes interval i
    width = (colour["sigma"][1] - colour["sigma"][0]) / (bins * 0.9 + 0.1)
    intervals = [(0.9 * width * i, 0.9 * width * i + width) for i in range(bins)]
    biases = np.array([[rng.uniform(*colour["bias"]) + rng.standard_normal(4) * rng.uniform(*intervals[i % bins])
                        for _ in range(bins)] for i in range(count)])
    return VirtualCameras(k_range=(float(ranges["K"][0]), float(ranges["K"][1])), read_slopes=read_params[0],
                          read_biases=read_params[1], read_spreads=read_params[2], row_slopes=row_params[0],
                          row_biases=row_params[1], row_spreads=row_params[2], tukey_lambdas=lambdas,
                          colour_biases=biases, noise_type=noise_type)


@dataclass(frozen=True)
class CaptureNoise:
    """The noise parameters of one simulated capture (all in DN)."""

    camera: int
    gain: float
    read_sigma: float
    row_sigma: float
    tukey_lambda: float
    colour_bias: np.ndarray


def colour_bias_bin(gain: float, k_range: tuple[float, float], bins: int) -> int:
    """LED's bin of the gain ``K``: linear over the K range (the last bin includes its top)."""
    width = (k_range[1] - k_range[0]) / bins
    return int(min(max((gain - k_range[0]) // width, 0), bins - 1))


def draw_capture(cameras: VirtualCameras, camera: int, rng: np.random.Generator) -> CaptureNoise:
    """One capture's parameters on ``camera``: ``K`` log-uniform, the read and row scales from the camera's
    log-linear relations, the colour bias of K's bin."""
    if not 0 <= camera < len(cameras):
        raise ValueError(f"camera {camera} of {len(cameras)} virtual cameras")
    low, high = math.log(cameras.k_range[0]), math.log(cameras.k_range[1])
    log_gain = rng.uniform(low, high)
    read = math.exp(rng.normal(cameras.read_slopes[camera] * log_gain + cameras.read_biases[camera],
                               cameras.read_spreads[camera]))
    row = math.exp(rng.normal(cameras.row_slopes[camera] * log_gain + cameras.row_biases[camera],
                              cameras.row_spreads[camera]))
    gain = math.exp(log_gain)
    bias = cameras.colour_biases[camera, colour_bias_bin(gain, cameras.k_range, cameras.colour_biases.shape[1])]
    return CaptureNoise(camera, gain, read, row, float(cameras.tukey_lambdas[camera]), np.asarray(bias, np.float64))


def tukey_lambda_noise(shape: tuple[int, ...], sigma: float, lam: float, rng: np.random.Generator) -> np.ndarray:
    """Tukey-lambda noise of scale ``sigma`` and shape ``lam``: its quantile function at uniform draws."""
    u = rng.random(shape) * (1 - 2 * TUKEY_EPSILON) + TUKEY_EPSILON
    return sigma * (u**lam - (1 - u) ** lam) / lam


def row_noise(planes_shape: tuple[int, int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Row noise of packed RAW (4 x h x w): one value per row of the 2h-row mosaic, shared along the row; R and
    G1 take the even rows', B and G2 the odd rows' (the packed order R, G1, B, G2 of an RGGB quad)."""
    _, height, width = planes_shape
    rows = rng.standard_normal(2 * height) * sigma
    even, odd = rows[0::2, None], rows[1::2, None]
    return np.stack([np.broadcast_to(r, (height, width)) for r in (even, even, odd, odd)])


def noise_components(x: np.ndarray, capture: CaptureNoise, noise_type: str,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each component's noise (DN) for the dimmed signal ``x`` (4 x h x w, DN), in LED's order."""
    parts: dict[str, np.ndarray] = {}
    if "p" in noise_type:
        parts["shot"] = rng.poisson(np.maximum(x, 0) / capture.gain) * capture.gain - x
    if "g" in noise_type:
        parts["read"] = rng.standard_normal(x.shape) * capture.read_sigma
    elif "t" in noise_type:
        parts["read"] = tukey_lambda_noise(x.shape, capture.read_sigma, capture.tukey_lambda, rng)
    if "r" in noise_type:
        parts["row"] = row_noise(x.shape, capture.row_sigma, rng)
    if "q" in noise_type:
        parts["quantisation"] = rng.random(x.shape) - 0.5
    if "c" in noise_type:
        parts["colour_bias"] = np.broadcast_to(capture.colour_bias[:, None, None], x.shape)
    return parts


def synthesise(gt: np.ndarray, scale: np.ndarray, ratio: float, capture: CaptureNoise, noise_type: str,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) float32 packed frames: ``gt`` (4 x h x w, normalised, black level removed) clipped to
    [0, 1] as the target, the capture's noise added at ``1 / ratio`` of its light and brought back up."""
    if gt.ndim != 3 or gt.shape[0] != 4:
        raise ValueError(f"packed RAW is 4 x h x w, got shape {gt.shape}")
    if ratio <= 0:
        raise ValueError(f"exposure ratio must be > 0, got {ratio}")
    clean = np.clip(gt.astype(np.float64), 0.0, 1.0)
    span = np.asarray(scale, np.float64).reshape(4, 1, 1)
    x = clean * span / ratio
    noisy = x + sum(noise_components(x, capture, noise_type, rng).values())
    lq = np.minimum(noisy / span * ratio, 1.0)
    return lq.astype(np.float32), clean.astype(np.float32)


def tukey_lambda_variance(lam: float) -> float:
    """The variance of the standard Tukey-lambda distribution of shape ``lam`` (> -1/2, not 0)."""
    return 2.0 / lam**2 * (1.0 / (1.0 + 2.0 * lam) - math.gamma(lam + 1.0) ** 2 / math.gamma(2.0 * lam + 2.0))


def moments(signal: float, capture: CaptureNoise, noise_type: str) -> tuple[float, float]:
    """The mean and variance (DN) that the model gives a pixel of dimmed signal ``signal`` (DN), for the packed
    plane whose colour bias is ``capture.colour_bias[0]``: the components are independent, so they add."""
    mean, variance = signal, 0.0
    if "p" in noise_type:
        variance += capture.gain * signal
    if "g" in noise_type:
        variance += capture.read_sigma**2
    elif "t" in noise_type:
        variance += capture.read_sigma**2 * tukey_lambda_variance(capture.tukey_lambda)
    if "r" in noise_type:
        variance += capture.row_sigma**2
    if "q" in noise_type:
        variance += 1.0 / 12.0
    if "c" in noise_type:
        mean += float(capture.colour_bias[0])
    return mean, variance

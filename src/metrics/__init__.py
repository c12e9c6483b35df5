"""Protocol-exact image metrics: per-image PSNR/SSIM under a protocol (``conf/metrics``), and set averages."""

from src.metrics.aggregate import PerImageMean
from src.metrics.protocols import FloatProtocol, MetricProtocol, Uint8Protocol

__all__ = ["FloatProtocol", "MetricProtocol", "PerImageMean", "Uint8Protocol"]

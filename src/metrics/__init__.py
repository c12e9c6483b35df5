"""Protocol-exact image metrics: per-image PSNR/SSIM under a protocol (``conf/metrics``), and set averages."""

from src.metrics.aggregate import PerImageMean
from src.metrics.protocols import FloatProtocol, MetricProtocol, YChannelProtocol

__all__ = ["FloatProtocol", "MetricProtocol", "PerImageMean", "YChannelProtocol"]

"""Protocol-exact image metrics: per-image PSNR/SSIM by named protocol, and their set-level averages."""

from src.metrics.aggregate import PerImageMean
from src.metrics.protocols import PROTOCOLS, MetricProtocol, get_protocol

__all__ = ["PROTOCOLS", "MetricProtocol", "PerImageMean", "get_protocol"]

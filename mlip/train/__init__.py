"""Training: configuration, losses, metrics, EMA, checkpoints, the loop and DDP.

``train(config)`` does what ``mlip train config.yaml`` does.
"""

from ..metrics import Metrics
from .config import ConfigError, TrainConfig, as_config, load_config
from .loop import StopTraining, TrainResult, train
from .losses import WeightedLoss

__all__ = [
    "ConfigError",
    "Metrics",
    "StopTraining",
    "TrainConfig",
    "TrainResult",
    "WeightedLoss",
    "as_config",
    "load_config",
    "train",
]

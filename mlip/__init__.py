"""mlip: machine-learned interatomic potentials."""

from ._malloc import tune_malloc
from ._source_tree import register_kernels as _register_kernels
from ._version import __version__

_register_kernels()

from .calculator import MLIPCalculator, predict_batched  # noqa: E402
from .models.registry import available_models, build_model, load_model  # noqa: E402

# mlip.train(config) is the function, as `mlip train config.yaml` is the verb; the package
# mlip.train stays importable by name (from mlip.train import TrainConfig).
from .train import train  # noqa: E402

__all__ = [
    "MLIPCalculator",
    "__version__",
    "available_models",
    "build_model",
    "load_model",
    "predict_batched",
    "train",
    "tune_malloc",
]

"""mlip: machine-learned interatomic potentials.

The public names are imported on first use (PEP 562), so ``import mlip`` and the ``mlip`` CLI's
``--help`` do not pay for torch and e3nn (seconds) before they are needed.
"""

import importlib
import sys
import types

from ._malloc import tune_malloc
from ._source_tree import register_kernels as _register_kernels
from ._version import __version__

_register_kernels()

_LAZY = {
    "MLIPCalculator": "calculator",
    "predict_batched": "calculator",
    "available_models": "models.registry",
    "build_model": "models.registry",
    "load_model": "models.registry",
    "load_pretrained": "pretrained",
    "pretrained_models": "pretrained",
}

__all__ = [
    "MLIPCalculator",
    "__version__",
    "available_models",
    "build_model",
    "load_model",
    "load_pretrained",
    "predict_batched",
    "pretrained_models",
    "train",
    "tune_malloc",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # a subpackage reached as an attribute (mlip.data, mlip.models, ...)
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    # mlip.train(config) is the function, as `mlip train config.yaml` is the verb; the package
    # mlip.train stays importable by name (from mlip.train import TrainConfig). The import
    # system binds a loaded submodule to its parent's attribute: the setter keeps the name
    # for the function.
    @property
    def train(self):
        from .train import train

        return train

    @train.setter
    def train(self, module):
        pass


sys.modules[__name__].__class__ = _Package

"""mlip: machine-learned interatomic potentials."""

from ._source_tree import register_kernels as _register_kernels
from ._version import __version__

_register_kernels()

__all__ = ["__version__"]

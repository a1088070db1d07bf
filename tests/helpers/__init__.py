"""Helpers shared by the tests: `from tests.helpers import ACAC, shared, tiny_config`.

paths: the repo's data folders and ../shared/data; tiny: tiny data, configs and models. The
kernel and LAMMPS helpers serve one folder each (tests/kernels, tests/integrations) and the
first imports mlip.kernels, so they are imported by name: ``tests.helpers.kernels``,
``tests.helpers.lammps``.
"""

from .paths import ACAC, DATASETS, REPO, SAMPLES, SCRIPTS, SHARED, load_script, shared
from .tiny import TINY_MODEL, kill_and_resume, tiny_config, tiny_cu_model, write_acac

__all__ = [
    "ACAC",
    "DATASETS",
    "REPO",
    "SAMPLES",
    "SCRIPTS",
    "SHARED",
    "TINY_MODEL",
    "kill_and_resume",
    "load_script",
    "shared",
    "tiny_config",
    "tiny_cu_model",
    "write_acac",
]

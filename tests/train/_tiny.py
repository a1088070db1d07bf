"""Compatibility shim: the helpers moved to tests/helpers/tiny.py. test_loop.py and
test_time_budget.py still import ``from ._tiny``; drop this once they import tests.helpers."""

from tests.helpers.paths import ACAC, REPO
from tests.helpers.tiny import TINY_MODEL, kill_and_resume, tiny_config, tiny_cu_model, write_acac

__all__ = [
    "ACAC",
    "REPO",
    "TINY_MODEL",
    "kill_and_resume",
    "tiny_config",
    "tiny_cu_model",
    "write_acac",
]

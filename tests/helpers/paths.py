"""Where the test data lives: samples in the repo, real DFT data in shared/ beside the clone."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets"
SAMPLES = DATASETS / "samples"
ACAC = DATASETS / "acac"
SCRIPTS = REPO / "scripts"
# CI clones the repo with shared/ beside it (../shared/data); a worktree under /work has it too.
SHARED = REPO.parent / "shared" / "data"


def shared(relative: str, *, required: bool = False) -> Path:
    """``SHARED / relative``; where it is missing the test skips (or fails, ``required=True``),
    naming the path, so a checkout without shared/ says what it lacks instead of erroring."""
    path = SHARED / relative
    if not path.exists():
        message = (
            f"real DFT data {path} is missing: the tests read shared/data beside the clone "
            f"({SHARED}); put or link the shared/ folder there, as CI lays it out"
        )
        if required:
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module, without putting scripts/ on sys.path (an installed
    package named ``scripts`` could shadow it there). A fresh module each call."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import would: dataclasses and pickle look it up there
    spec.loader.exec_module(module)
    return module

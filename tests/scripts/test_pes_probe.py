"""scripts/pes_probe.py: the residual beyond the forces is second order on a smooth surface."""

import json

import ase.io
import numpy as np

from tests.helpers import ACAC, load_script


def test_residual_is_second_order_and_reported(tmp_path):
    module = load_script("pes_probe")
    frames = ase.io.read(ACAC / "test_MD_300K.xyz", index=":1")
    dirs = np.eye(3)
    small = module.probe("acac-facet-s", frames, [11], dirs, 0.01, "float64")
    large = module.probe("acac-facet-s", frames, [11], dirs, 0.02, "float64")
    # E(x + h u) - E(x) + h F.u = k h^2 / 2 + O(h^3): doubling h gives about 4x. A residual
    # that kept the first-order term (a sign error in F.u) would grow 2x and be ~100x larger.
    assert 3.0 < large["max_ev"] / small["max_ev"] < 5.0
    assert large["max_ev"] < 0.02
    traj = tmp_path / "two.traj"
    ase.io.write(traj, ase.io.read(ACAC / "test_MD_300K.xyz", index=":2"))
    out = tmp_path / "probe.json"
    assert module.main(["acac-facet-s", "--trajectory", str(traj), "--atoms", "11",
                        "--directions", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())["models"][0]
    assert report["n_probes"] == 4 and report["of"] == 2 and report["above_threshold"] == 0
    # a threshold below every residual marks every (frame, atom) pair, and exits 1
    assert module.main(["acac-facet-s", "--trajectory", str(traj), "--atoms", "11",
                        "--directions", "2", "--threshold", "1e-9"]) == 1

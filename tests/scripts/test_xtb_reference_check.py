"""scripts/xtb_reference_check.py: stored GFN2-xTB labels recomputed with tblite."""

import numpy as np
import pytest

from tests.helpers import load_script


def test_labels_from_tblite_itself_check_out_and_a_wrong_one_does_not():
    pytest.importorskip("tblite")
    from ase.build import molecule

    from mlip.data import keys as K

    script = load_script("xtb_reference_check")
    atoms = molecule("H2O")
    atoms.rattle(0.05, seed=0)
    z, pos = atoms.numbers, atoms.positions
    energy, forces, homo = script._xtb(z, pos, -1.0, 2.0)
    frame = {K.ATOMIC_NUMBERS: z, K.POSITIONS: pos, K.CHARGE: -1.0, K.SPIN: 2.0,
             K.ENERGY: energy, K.FORCES: forces, "name": "h2o-"}
    row = script.check(frame)
    assert abs(row["energy_difference"]) < 1e-6 and row["force_rmse_difference"] < 1e-6
    assert row["finite_difference"] == pytest.approx(row["force_along_direction"], rel=1e-4)
    assert row["highest_occupied_orbital"] == homo
    # Forces of the neutral molecule stored as the anion's: found.
    neutral_forces = script._xtb(z, pos, 0.0, 1.0)[1]
    wrong = script.check({**frame, K.FORCES: neutral_forces})
    assert wrong["force_rmse_difference"] > 10
    assert not np.isclose(wrong["finite_difference"], wrong["force_along_direction"], rtol=1e-3)

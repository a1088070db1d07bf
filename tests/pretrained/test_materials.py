"""The shipped materials models (issue #22): trained stress is the strain derivative of the
trained energy, its sign follows the DFT, and `mlip eos` finds the DFT equilibrium."""

import numpy as np
import pytest
from ase import Atoms

import mlip
from mlip.data import keys as K
from mlip.data.readers import read_frames
from mlip.pretrained import pretrained_models
from mlip.testing.contract import evaluate, stress_finite_difference_error
from tests.helpers import shared

pytestmark = pytest.mark.skipif(
    "tial-facet-s" not in pretrained_models(), reason="needs the shipped tial-facet-s"
)


def tial_cells(n):
    frames = [f for f in read_frames(shared("tial/TiAl_tutorial.xyz")) if len(f[K.POSITIONS]) == 2]
    out = []
    for f in frames[:n]:
        atoms = Atoms(
            numbers=f[K.ATOMIC_NUMBERS], positions=f[K.POSITIONS], cell=f[K.CELL], pbc=True
        )
        atoms.info["dft_stress"] = f[K.STRESS]
        out.append(atoms)
    return out


def test_trained_stress_is_the_strain_derivative_on_a_triclinic_cell():
    model = mlip.load_pretrained("tial-facet-s", dtype="float64")
    atoms = tial_cells(1)[0].repeat((2, 1, 1))
    shear = np.array([[1.0, 0.04, -0.03], [0.02, 1.0, 0.05], [-0.01, 0.03, 1.0]])
    atoms.set_cell(atoms.cell[:] @ shear, scale_atoms=True)
    atoms.rattle(0.05, seed=1)
    assert len(set(np.round(atoms.cell.cellpar()[3:], 3))) == 3  # triclinic
    stress = evaluate(model, atoms)[0]["stress"]
    error = stress_finite_difference_error(model, atoms, h=1e-5)
    assert error / np.abs(stress).max() < 1e-6


def test_trained_stress_has_the_dft_sign():
    model = mlip.load_pretrained("tial-facet-s", dtype="float64")
    cells = tial_cells(60)
    pred = np.array([r["stress"] for r in evaluate(model, cells)]).reshape(-1)
    ref = np.array([a.info["dft_stress"] for a in cells]).reshape(-1)
    big = np.abs(ref) > 0.02  # eV/Å³ (3 GPa): well above the model's error
    assert big.sum() > 50
    assert np.mean(np.sign(pred[big]) == np.sign(ref[big])) > 0.95
    assert np.corrcoef(pred, ref)[0, 1] > 0.9

"""Bad input is refused before any tensor work, with a message that says what and where."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from mlip.data import StructureError, atoms_to_frame, check_frame, from_ase


def frame(atoms, **changes):
    f = atoms_to_frame(atoms, name="test-structure")
    f.update(changes)
    return f


def test_no_atoms():
    with pytest.raises(StructureError, match="test-structure: has no atoms"):
        check_frame(frame(Atoms()))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_infinite_position(value):
    atoms = molecule("H2O")
    pos = atoms.positions.copy()
    pos[1, 2] = value
    with pytest.raises(StructureError, match="position of atom 1 is NaN or infinite"):
        check_frame(frame(atoms, positions=pos))


def test_nan_cell():
    atoms = bulk("Cu")
    cell = atoms.cell.array.copy()
    cell[0, 0] = np.nan
    with pytest.raises(StructureError, match="cell contains NaN"):
        check_frame(frame(atoms, cell=cell))


def test_periodic_with_zero_cell():
    atoms = Atoms("Cu", positions=[[0, 0, 0]], pbc=True)
    with pytest.raises(StructureError, match="periodic cell vector is zero"):
        check_frame(frame(atoms))


def test_periodic_with_singular_cell():
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=[[2, 0, 0], [4, 0, 0], [0, 0, 3]], pbc=True)
    with pytest.raises(StructureError, match="linearly dependent"):
        check_frame(frame(atoms))


def test_slab_with_zero_open_vector_is_fine():
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [1.3, 1.3, 1.0]],
                  cell=[[2.6, 0, 0], [0, 2.6, 0], [0, 0, 0]], pbc=[True, True, False])
    check_frame(frame(atoms))
    assert from_ase(atoms, 3.0)["edge_index"].shape[1] > 0


def test_atoms_too_close():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.05]])
    with pytest.raises(StructureError, match=r"atoms 0 and 1 are 0.05 Å apart"):
        check_frame(frame(atoms))


def test_atoms_too_close_through_periodic_image():
    atoms = Atoms("H2", positions=[[0, 0, 0.01], [0, 0, 2.97]], cell=np.eye(3) * 3, pbc=True)
    with pytest.raises(StructureError, match="periodic image"):
        check_frame(frame(atoms))


def test_unsupported_element_lists_the_supported():
    with pytest.raises(StructureError, match=r"\['Cu'\] not supported.*knows \['H', 'O'\]"):
        check_frame(frame(bulk("Cu")), supported=[1, 8])


@pytest.mark.parametrize(
    "charge, spin, message",
    [
        (0, 0, "must be an integer >= 1"),
        (0, 2, "impossible with 10 electrons"),  # water: 10 electrons, doublet impossible
        (1, 1, "impossible with 9 electrons"),
        (0.5, 1, "charge must be an integer"),
        (11, 1, "leaves -1 electrons"),
    ],
)
def test_invalid_charge_or_spin(charge, spin, message):
    with pytest.raises(StructureError, match=message):
        check_frame(frame(molecule("H2O"), charge=np.float64(charge), spin=np.float64(spin)))


@pytest.mark.parametrize("charge, spin", [(0, 1), (0, 3), (1, 2), (-1, 2)])
def test_valid_charge_and_spin(charge, spin):
    check_frame(frame(molecule("H2O"), charge=np.float64(charge), spin=np.float64(spin)))

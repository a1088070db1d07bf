"""Graphs from ASE and pymatgen, batching, and targets carried through."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixAtoms

from mlip.data import (
    atoms_to_frame,
    batch_graphs,
    frame_to_atoms,
    from_ase,
    from_pymatgen,
    to,
    unbatch,
)
from mlip.data import keys as K
from mlip.data.graph import input_frame


def test_edge_vectors_follow_the_convention():
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    g = from_ase(atoms, 4.0)
    sender, receiver = g[K.EDGE_INDEX]
    vec = g[K.POSITIONS][sender] - g[K.POSITIONS][receiver] + g[K.EDGE_SHIFT] @ g[K.CELL][0]
    d = vec.norm(dim=1)
    assert (d < 4.0).all() and (d > 2.0).all()
    # Compare with ASE's own neighbour list, edge count and distances.
    from ase.neighborlist import neighbor_list

    i, j, dist = neighbor_list("ijd", atoms, 4.0)
    assert len(i) == g[K.EDGE_INDEX].shape[1]
    np.testing.assert_allclose(np.sort(dist), np.sort(d.numpy()), atol=1e-12)


def test_targets_charge_spin_tags_and_fixed_are_carried():
    atoms = fcc111("Pt", (2, 2, 2), vacuum=6.0)
    atoms.set_constraint(FixAtoms(indices=[0, 1]))
    forces = np.random.default_rng(0).normal(size=(len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, energy=-12.5, forces=forces,
                                       stress=np.arange(6, dtype=float))
    g = from_ase(atoms, 3.0)
    assert g[K.ENERGY].tolist() == [-12.5] and g[K.ENERGY].dtype == torch.float64
    np.testing.assert_array_equal(g[K.FORCES].numpy(), forces)
    assert g[K.STRESS].shape == (1, 3, 3) and float(g[K.STRESS][0, 0, 1]) == 5.0
    assert g[K.FIXED].tolist()[:3] == [True, True, False]
    assert g[K.TAGS].tolist() == atoms.get_tags().tolist()


def test_pymatgen_structure_and_molecule():
    from pymatgen.core import Lattice, Molecule, Structure

    s = Structure(Lattice.cubic(3.6), ["Cu"] * 4,
                  [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    gs = from_pymatgen(s, 3.0)
    ga = from_ase(bulk("Cu", "fcc", a=3.6, cubic=True), 3.0)
    assert gs[K.EDGE_INDEX].shape == ga[K.EDGE_INDEX].shape
    assert gs[K.PBC].all()
    m = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
                 charge=-1, spin_multiplicity=2)
    gm = from_pymatgen(m, 3.0)
    assert gm[K.CHARGE].tolist() == [-1.0] and gm[K.SPIN].tolist() == [2.0]
    assert not gm[K.PBC].any()


def test_batch_unbatch_roundtrip():
    graphs = [from_ase(a, 3.5) for a in (bulk("Si") * 2, molecule("CH4"), molecule("H2O"))]
    b = batch_graphs(graphs)
    assert b[K.BATCH].tolist().count(1) == 5 and b[K.NUM_ATOMS].tolist() == [16, 5, 3]
    for orig, back in zip(graphs, unbatch(b)):
        assert set(orig) == set(back)
        for key in orig:
            assert torch.equal(orig[key], back[key]), key


def test_batching_refuses_mixed_keys():
    a = molecule("H2O")
    b = molecule("H2O")
    b.calc = SinglePointCalculator(b, energy=1.0)
    with pytest.raises(ValueError, match="differs from graph 0 in keys"):
        batch_graphs([from_ase(a, 3.0), from_ase(b, 3.0)])


def test_batching_can_keep_only_common_keys():
    a, b = molecule("H2O"), molecule("CH4")
    b.calc = SinglePointCalculator(b, energy=1.0)
    batch = batch_graphs([from_ase(a, 3.0), from_ase(b, 3.0)], common_keys=True)
    assert K.ENERGY not in batch and batch[K.NUM_ATOMS].tolist() == [3, 5]


def test_input_frame_drops_targets():
    atoms = molecule("H2O")
    atoms.calc = SinglePointCalculator(atoms, energy=1.0, forces=np.zeros((3, 3)))
    atoms.info["charge"] = 0
    frame = input_frame(atoms_to_frame(atoms, name="w"))
    assert set(frame) == {K.POSITIONS, K.ATOMIC_NUMBERS, K.CELL, K.PBC, K.CHARGE, "name"}


def test_frame_to_atoms_inverts_atoms_to_frame():
    slab = fcc111("Cu", (2, 2, 3), vacuum=5.0)
    slab.set_tags(np.arange(len(slab)) % 3)
    slab.set_constraint(FixAtoms(indices=[0, 1]))
    rng = np.random.default_rng(0)
    stress = rng.normal(size=6)
    slab.calc = SinglePointCalculator(slab, energy=-3.5, forces=rng.normal(size=(12, 3)),
                                      stress=stress)
    slab.info.update(charge=1, spin=2)
    frame = atoms_to_frame(slab, name="slab")
    back = frame_to_atoms(frame)
    assert back.info == {"name": "slab", "charge": 1.0, "spin": 2.0}
    np.testing.assert_array_equal(back.get_tags(), slab.get_tags())
    np.testing.assert_array_equal(back.constraints[0].get_indices(), [0, 1])
    np.testing.assert_allclose(back.calc.results["stress"], stress, rtol=0, atol=1e-15)
    again = atoms_to_frame(back)
    assert set(again) == set(frame)
    for key, value in frame.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    # Given results replace the frame's targets: predictions, or none at all.
    assert frame_to_atoms(frame, results={}).calc is None
    assert frame_to_atoms(frame, results={"energy": 2.0}).calc.results == {"energy": 2.0}


def test_to_changes_only_float_dtypes():
    g = to(from_ase(molecule("H2O"), 3.0), dtype=torch.float32)
    assert g[K.POSITIONS].dtype == torch.float32 and g[K.EDGE_INDEX].dtype == torch.long


def test_lone_atom_has_no_edges():
    g = from_ase(Atoms("Ar", positions=[[0, 0, 0]]), 5.0)
    assert g[K.EDGE_INDEX].shape == (2, 0)

"""The ASE calculator: results, MD, relaxation with the cell, batching, and refusing bad input."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE

import mlip
from mlip.data import StructureError
from mlip.testing import evaluate


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = mlip.build_model(
        "equivariant",
        elements=[1, 6, 8, 29],
        cutoff=4.0,
        lmax=1,
        channels=8,
        num_layers=2,
        dtype="float64",
    )
    m.set_e0({1: -13.6, 6: -1029.5, 8: -2041.3, 29: -3.7})
    return m.eval()


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("calc") / "model.pt"
    model.save(path)
    return path


def test_results_match_the_model(model, checkpoint):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 1)
    atoms.rattle(0.05, seed=0)
    atoms.calc = mlip.MLIPCalculator(checkpoint, device="cpu")
    ref = evaluate(model, atoms)[0]
    assert atoms.get_potential_energy() == pytest.approx(float(ref["energy"]), abs=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=1e-12)
    np.testing.assert_allclose(atoms.get_potential_energies(), ref["node_energy"], atol=1e-12)
    s = ref["stress"]
    voigt = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
    np.testing.assert_allclose(atoms.get_stress(), voigt, atol=1e-12)
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()


def test_molecule_has_no_stress(model):
    atoms = molecule("H2O")
    atoms.calc = mlip.MLIPCalculator(model)
    atoms.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()


def test_md_and_relaxation_run(model):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.calc = mlip.MLIPCalculator(model)
    VelocityVerlet(atoms, timestep=1.0).run(5)
    opt = FIRE(FrechetCellFilter(atoms), logfile=None)
    opt.run(fmax=0.05, steps=200)
    assert np.abs(atoms.get_forces()).max() < 0.05
    mol = molecule("CH4")
    mol.rattle(0.05, seed=3)
    mol.calc = mlip.MLIPCalculator(model)
    BFGS(mol, logfile=None).run(fmax=0.05, steps=200)
    assert np.abs(mol.get_forces()).max() < 0.05


def test_predict_batched_equals_one_by_one(model):
    structures = [bulk("Cu", "fcc", a=3.6) * (2, 1, 1), molecule("H2O"), molecule("CH4")]
    structures[0].rattle(0.02, seed=4)
    batched = mlip.predict_batched(model, structures, batch_size=2)
    for atoms, r in zip(structures, batched):
        atoms.calc = mlip.MLIPCalculator(model)
        assert r["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(r["forces"], atoms.get_forces(), atol=1e-10)
        assert ("stress" in r) == bool(atoms.pbc.all())


def test_float32_calculator(checkpoint):
    atoms = molecule("H2O")
    atoms.calc = mlip.MLIPCalculator(checkpoint, dtype="float32")
    assert atoms.calc.model.dtype == torch.float32
    assert np.isfinite(atoms.get_forces()).all()


@pytest.mark.parametrize(
    "atoms, message",
    [
        (Atoms(), "has no atoms"),
        (Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.01]]), "closer than 0.1"),
        (Atoms("N", positions=[[0, 0, 0]]), r"\['N'\] not supported"),
        (Atoms("H", positions=[[np.nan, 0, 0]]), "NaN or infinite"),
        (Atoms("H", positions=[[0, 0, 0]], pbc=True), "periodic cell vector is zero"),
    ],
)
def test_bad_input_is_refused(model, atoms, message):
    atoms.calc = mlip.MLIPCalculator(model)
    with pytest.raises(StructureError, match=message):
        atoms.get_potential_energy()


def test_invalid_spin_is_refused(model):
    atoms = molecule("H2O")
    atoms.info.update(charge=0, spin=2)
    atoms.calc = mlip.MLIPCalculator(model)
    with pytest.raises(StructureError, match="spin multiplicity 2 is impossible"):
        atoms.get_potential_energy()


def test_dtype_mismatch_with_module_is_refused(model):
    with pytest.raises(ValueError, match="runs in"):
        mlip.MLIPCalculator(model, dtype="float32")


class _Counting(torch.nn.Module):
    """A model wrapper that counts calls (the attributes the calculator reads pass through)."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.calls = model, []

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def forward(self, graph, **kwargs):
        self.calls.append(kwargs)
        return self.inner(graph, **kwargs)


@pytest.mark.parametrize(
    "order",
    [
        ("energy", "forces", "stress"),
        ("stress", "forces", "energy"),
        ("forces", "energy", "stress"),
    ],
)
def test_one_model_call_per_structure(model, order):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.rattle(0.05, seed=5)
    calc = mlip.MLIPCalculator(model)
    calc.model = counting = _Counting(model)
    atoms.calc = calc
    getters = {
        "energy": atoms.get_potential_energy,
        "forces": atoms.get_forces,
        "stress": atoms.get_stress,
    }
    for name in order:
        getters[name]()
    atoms.get_potential_energies()
    assert len(counting.calls) == 1
    assert counting.calls[0] == {"compute_forces": True, "compute_stress": True}
    # the stored results are those of a call that asks for everything at once
    ref = evaluate(model, atoms)[0]
    np.testing.assert_allclose(atoms.get_stress(), calc.results["stress"], atol=0)
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=1e-12)
    atoms.positions[0, 0] += 0.01  # a changed structure is computed again, once
    atoms.get_forces(), atoms.get_stress()
    assert len(counting.calls) == 2
    mol = molecule("H2O")  # no stress for a molecule, and asking for it costs no call
    mol.calc = calc
    mol.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        mol.get_stress()
    assert len(counting.calls) == 3 and counting.calls[2]["compute_stress"] is False


def test_inference_builds_no_graph_for_a_second_derivative(model):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.rattle(0.05, seed=6)
    graph = mlip.data.graph.frame_to_graph(mlip.data.graph.atoms_to_frame(atoms), model.cutoff)
    out = model.eval()(graph, compute_forces=True, compute_stress=True)
    assert not out["forces"].requires_grad and not out["stress"].requires_grad
    # asking for the graph (as force training does) changes nothing but the graph
    kept = model(graph, compute_forces=True, compute_stress=True, create_graph=True)
    assert kept["forces"].requires_grad and kept["stress"].requires_grad
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(kept[key].detach(), out[key], rtol=0, atol=1e-12)

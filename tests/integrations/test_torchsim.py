"""torch-sim driven by an mlip model: its own interface check, the same numbers as the ASE
calculator for a batch of systems, charge and spin per system, and a short relaxation."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

import mlip

ts = pytest.importorskip("torch_sim")
from torch_sim.models.interface import validate_model_outputs  # noqa: E402

from mlip.integrations.torchsim import MLIPModel  # noqa: E402


@pytest.fixture(scope="module")
def si_fe():
    torch.manual_seed(0)
    return mlip.build_model("nequip-like", elements=[14, 26], cutoff=4.0, dtype="float64")


def crystals():
    si = bulk("Si", "diamond", a=5.43, cubic=True)
    fe = bulk("Fe", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    fe.symbols[[1, 5]] = "Si"
    for i, atoms in enumerate((si, fe)):
        atoms.rattle(0.05, seed=i)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.01 * (i + 1) * np.triu(np.ones((3, 3)))),
                       scale_atoms=True)
    return [si, fe]


def test_passes_torch_sims_interface_check(si_fe):
    validate_model_outputs(MLIPModel(si_fe, device="cpu"), torch.device("cpu"), torch.float64)


def test_batch_matches_the_ase_calculator(si_fe):
    systems = crystals()
    state = ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64)
    out = MLIPModel(si_fe, device="cpu")(state)
    assert out["energy"].shape == (2,) and out["stress"].shape == (2, 3, 3)
    start = 0
    for b, atoms in enumerate(systems):
        atoms.calc = mlip.MLIPCalculator(si_fe, device="cpu")
        n = len(atoms)
        np.testing.assert_allclose(out["energy"][b].item(), atoms.get_potential_energy(),
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["forces"][start:start + n].numpy(), atoms.get_forces(),
                                   rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["stress"][b].numpy(), atoms.get_stress(voigt=False),
                                   rtol=0, atol=1e-10)
        start += n


def test_molecules_need_compute_stress_false(si_fe):
    cluster = Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]], cell=[10, 10, 10])  # open
    state = ts.io.atoms_to_state([cluster], torch.device("cpu"), torch.float64)
    with pytest.raises(ValueError, match="compute_stress=False"):
        MLIPModel(si_fe, device="cpu")(state)
    out = MLIPModel(si_fe, device="cpu", compute_stress=False)(state)
    assert set(out) == {"energy", "forces"}
    np.testing.assert_allclose(out["forces"].sum(0).numpy(), 0, atol=1e-12)


def test_charge_and_spin_reach_a_conditioned_model():
    model = mlip.load_pretrained("xtb-charged-facet-s", dtype="float64")
    water = molecule("H2O")
    state = ts.io.atoms_to_state([water, water.copy()], torch.device("cpu"), torch.float64)
    out = MLIPModel(model, device="cpu", compute_stress=False, charge=[0, 1], spin=[1, 2])(state)
    for b, (charge, spin) in enumerate([(0, 1), (1, 2)]):
        atoms = water.copy()
        atoms.info.update(charge=charge, spin=spin)
        atoms.calc = mlip.MLIPCalculator(model, device="cpu")
        np.testing.assert_allclose(out["energy"][b].item(), atoms.get_potential_energy(),
                                   rtol=0, atol=1e-9)
    assert out["energy"][1] - out["energy"][0] > 5.0  # an ionisation costs eV
    with pytest.raises(ValueError, match="3 values for 2 systems"):
        MLIPModel(model, device="cpu", compute_stress=False, charge=[0, 1, 0])(state)


def test_a_torch_sim_relaxation_lowers_the_energy(si_fe):
    systems = crystals()
    model = MLIPModel(si_fe, device="cpu")
    before = model(ts.io.atoms_to_state(systems, torch.device("cpu"), torch.float64))["energy"]
    # Positions and cell together: the cell moves by the stress.
    final = ts.optimize(system=systems, model=model, optimizer=ts.frechet_cell_fire,
                        max_steps=30)
    after = model(final)["energy"]
    assert torch.all(after < before)
    assert not torch.allclose(final.cell, ts.io.atoms_to_state(systems, "cpu", torch.float64).cell)


def test_a_direct_force_model_has_no_stress():
    model = mlip.build_model("transformer-s", elements=[14, 26], cutoff=4.0, dtype="float64",
                             direct_forces=True)
    with pytest.raises(ValueError, match="compute_stress=False"):
        MLIPModel(model, device="cpu")
    with pytest.warns(UserWarning, match="non-conservative"):
        wrapped = MLIPModel(model, device="cpu", compute_stress=False)
    state = ts.io.atoms_to_state(crystals(), torch.device("cpu"), torch.float64)
    assert wrapped(state)["forces"].shape == (state.n_atoms, 3)

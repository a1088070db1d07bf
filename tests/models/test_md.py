"""NVE energy conservation: 108-atom fcc Cu, float64, 1 fs, 2,000 steps, random weights."""

import numpy as np
import pytest
import torch
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet

import mlip


def nve_drift(model_name="nequip-like", steps=2000, seed=0, **hp):
    # Random weights make a random potential with no short-range wall; the ZBL term keeps
    # atoms from collapsing onto each other over 2 ps, which would end the run.
    torch.manual_seed(seed)
    hp = {"pair_repulsion": True, **hp}
    model = mlip.build_model(model_name, elements=[29], cutoff=5.0, dtype="float64", **hp)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    Stationary(atoms)
    atoms.calc = mlip.MLIPCalculator(model)
    energies = []

    def record():
        energies.append(atoms.get_potential_energy() + atoms.get_kinetic_energy())

    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.attach(record, interval=10)
    dyn.run(steps)
    energies = np.array(energies) / len(atoms)
    return float(abs(energies[-1] - energies[0])), float(energies.max() - energies.min())


@pytest.mark.slow
def test_nve_drift_below_1_mev_per_atom():
    drift, spread = nve_drift("nequip-like", channels=16, num_layers=2)
    print(f"NVE drift {drift * 1000:.4f} meV/atom, spread {spread * 1000:.4f} meV/atom")
    assert drift < 1e-3

"""The MD watchdog: each limit stops a state that breaks it, and only that."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from mlip.md_watch import (
    Limits,
    MDStopped,
    Watchdog,
    bond_graph,
    closest_distance,
    default_max_temperature,
    n_fragments,
)


def _state(atoms, energy=0.0, temperature=300.0, seed=0):
    atoms = atoms.copy()
    atoms.set_momenta(np.random.default_rng(seed).normal(size=(len(atoms), 3)))
    atoms.set_momenta(atoms.get_momenta() * math.sqrt(temperature / atoms.get_temperature()))
    atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


def test_default_temperature_limit():
    assert default_max_temperature(300) == 2000
    assert default_max_temperature(1000) == 5000


def test_a_quiet_state_passes_every_check():
    start = _state(molecule("CH3OH"))
    dog = Watchdog(Limits(), "nve", start)
    dog.check(start, 0)
    assert dog.check_drift and dog.check_fragments and dog.fragments0 == 1


def test_too_hot_is_stopped():
    start = _state(molecule("CH3OH"))
    dog = Watchdog(Limits(max_temperature=2000), "nvt", start)
    dog.check(_state(molecule("CH3OH"), temperature=1900), 10)
    with pytest.raises(MDStopped, match="--max-temperature") as stop:
        dog.check(_state(molecule("CH3OH"), temperature=2100), 20)
    assert stop.value.reason == "temperature" and stop.value.step == 20
    Watchdog(Limits(max_temperature=None), "nvt", start).check(
        _state(molecule("CH3OH"), temperature=1e5), 0
    )


def test_atoms_too_close_are_stopped_across_the_cell_boundary():
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    dog = Watchdog(Limits(), "nvt", _state(cu))
    squeezed = cu.copy()
    squeezed.positions[0] = [0.0, 0.0, 0.0]
    squeezed.positions[1] = [3.6 - 0.3, 0.0, 0.0]  # 0.3 Å away through the boundary
    with pytest.raises(MDStopped, match="closer than 0.5") as stop:
        dog.check(_state(squeezed), 5)
    assert stop.value.reason == "distance" and stop.value.value == pytest.approx(0.3, abs=1e-9)
    assert closest_distance(cu, 0.5) == math.inf


def test_nve_drift_is_stopped_and_other_ensembles_ignore_it():
    start = _state(molecule("CH3OH"), energy=-10.0)
    e_start = start.get_potential_energy() + start.get_kinetic_energy()
    n = len(start)
    later = _state(molecule("CH3OH"), seed=1)
    ekin = later.get_kinetic_energy()
    ok = e_start + 0.009 * n - ekin  # 9 meV/atom: within the default 10
    later.calc = SinglePointCalculator(later, energy=ok)
    dog = Watchdog(Limits(), "nve", start)
    dog.check(later, 1)
    later.calc = SinglePointCalculator(later, energy=e_start - 0.011 * n - ekin)
    with pytest.raises(MDStopped, match="--max-drift") as stop:
        dog.check(later, 2)
    assert stop.value.reason == "drift"
    Watchdog(Limits(), "nvt", start).check(later, 2)


def test_a_molecule_falling_apart_is_stopped_and_a_crystal_is_not_checked():
    mol = molecule("CH3OH")
    dog = Watchdog(Limits(), "nvt", _state(mol))
    broken = mol.copy()
    broken.positions[-1] += [4.0, 0.0, 0.0]  # a hydrogen leaves
    assert n_fragments(broken) == 2
    with pytest.raises(MDStopped, match="2 fragments, 1 at the start") as stop:
        dog.check(_state(broken), 30)
    assert stop.value.reason == "fragments"
    Watchdog(Limits(fragments=False), "nvt", _state(mol)).check(_state(broken), 30)
    assert not Watchdog(Limits(), "nvt", _state(bulk("Cu", cubic=True))).check_fragments


def test_bond_graph_matches_ase_neighbour_list():
    from ase.neighborlist import natural_cutoffs, neighbor_list

    for atoms in (molecule("CH3CH2OH"), bulk("Cu", "fcc", a=3.6) * (3, 3, 3)):
        atoms.rattle(0.1, seed=0)
        i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
        assert bond_graph(atoms) == {(a, b) for a, b in zip(i.tolist(), j.tolist()) if a < b}
    assert bond_graph(Atoms("H", positions=[[0, 0, 0]])) == set()

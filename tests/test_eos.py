"""Equations of state (mlip.eos and `mlip eos`): the fit, the scan, the verb, bad input."""

import json

import ase.io
import numpy as np
import pytest
from ase import units
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from mlip.cli import main
from mlip.eos import equation_of_state, fit_eos
from mlip.simulate import SimulationError
from tests.helpers import tiny_cu_model


def birch_murnaghan(v, e0, v0, b0, b1):
    eta = (v0 / v) ** (2 / 3)
    return e0 + 9 * v0 * b0 / 16 * ((eta - 1) ** 3 * b1 + (eta - 1) ** 2 * (6 - 4 * eta))


def test_fit_recovers_a_known_curve():
    v = np.linspace(14.0, 18.0, 9)
    b0 = 150 * units.GPa
    fit = fit_eos(v, birch_murnaghan(v, -3.5, 16.2, b0, 4.5))
    assert fit["v0"] == pytest.approx(16.2, rel=1e-6)
    assert fit["b0_gpa"] == pytest.approx(150, rel=1e-4)
    assert fit["e0"] == pytest.approx(-3.5, abs=1e-8)


def test_fit_refuses_few_points_and_a_minimum_outside_the_range():
    v = np.linspace(14.0, 15.0, 7)
    with pytest.raises(SimulationError, match="CuX: .*minimum lies outside"):
        fit_eos(v, birch_murnaghan(v, -3.5, 16.2, units.GPa * 150, 4.5), name="CuX")
    with pytest.raises(SimulationError, match="at least 5 finite"):
        fit_eos(v[:4], v[:4])


def test_scan_matches_the_fit_of_an_independent_scan():
    """EMT copper: the scan's minimum equals a fine hand-made scan's (EMT's own E(V))."""
    atoms = bulk("Cu", "fcc", a=3.7)
    result = equation_of_state(atoms, EMT(), strain=0.06, points=9, fmax=1e-4)
    assert result["relaxed"]["converged"] and result["all_converged"]
    a = np.linspace(3.5, 3.7, 41)
    energies = []
    for lattice in a:
        ref = bulk("Cu", "fcc", a=lattice)
        ref.calc = EMT()
        energies.append(ref.get_potential_energy())
    volumes = a**3 / 4
    ref = fit_eos(volumes, energies)
    assert result["v0"] == pytest.approx(ref["v0"], rel=1e-3)
    assert result["b0_gpa"] == pytest.approx(ref["b0_gpa"], rel=0.02)
    assert result["v0_per_atom"] == result["v0"]  # one atom per cell
    # the relaxed volume and the fitted one agree: the scan is centred on the minimum
    assert result["relaxed"]["volume"] == pytest.approx(result["v0"], rel=2e-3)


def test_scan_refuses_a_molecule_and_bad_ranges():
    with pytest.raises(SimulationError, match="periodic in all three"):
        equation_of_state(molecule("H2O"), EMT())
    with pytest.raises(SimulationError, match="strain"):
        equation_of_state(bulk("Cu"), EMT(), strain=0.7)


def test_verb_writes_the_summary_and_the_plot(tmp_path, capsys):
    tiny_cu_model(tmp_path / "cu.pt")
    ase.io.write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.6), format="extxyz")
    base = ["eos", str(tmp_path / "cu.pt"), str(tmp_path / "cu.xyz"), "--dtype", "float64"]
    out = ["-o", str(tmp_path / "eos.json"), "--plot", str(tmp_path / "eos.png")]
    assert main(base + ["--fmax", "0.01", "--points", "7"] + out) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert json.loads((tmp_path / "eos.json").read_text()) == summary
    assert len(summary["volumes"]) == 7 and (tmp_path / "eos.png").stat().st_size > 1000
    assert min(summary["volumes"]) < summary["v0"] < max(summary["volumes"])
    # far from the minimum, unrelaxed and narrow: the fit is refused, naming the file
    ase.io.write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.0), format="extxyz")
    assert main(base + ["--no-relax", "--strain", "0.02"]) == 1
    err = capsys.readouterr().err
    assert "cu.xyz" in err and "minimum lies outside" in err and "Traceback" not in err
    ase.io.write(tmp_path / "h2o.xyz", molecule("H2O"), format="extxyz")
    assert main(["eos", str(tmp_path / "cu.pt"), str(tmp_path / "h2o.xyz")]) == 1
    assert "periodic" in capsys.readouterr().err


class _LowerWhenCompressed(EMT):
    """EMT copper with 0.5 eV/atom less below 95% of its volume, as a learned potential can
    have a hole in a strained cell: points there leave the phase's basin."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        super().calculate(atoms, properties, system_changes or ["positions"])
        v0 = 3.59**3 / 4
        v = self.atoms.get_volume() / len(self.atoms)
        shift = -0.25 * (1 - np.tanh((v - 0.95 * v0) / (0.005 * v0))) * len(self.atoms)
        self.results["energy"] += shift
        self.results["free_energy"] += shift


def test_a_point_below_the_relaxed_equilibrium_is_refused():
    atoms = bulk("Cu", "fcc", a=3.6)
    with pytest.raises(SimulationError, match="meV/atom below the relaxed equilibrium"):
        equation_of_state(atoms, _LowerWhenCompressed(), strain=0.08, points=7, fmax=0.01)
    # the same scan of plain EMT passes: the check is not what fails
    assert equation_of_state(atoms, EMT(), strain=0.08, points=7, fmax=0.01)["b0_gpa"] > 0

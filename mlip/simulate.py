"""Molecular dynamics and relaxations through ASE, with any calculator (usually MLIPCalculator).

Output files (trajectory, relaxed structure) are written under a temporary name and renamed
when the run completes, so a failed or interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from ase import units

from .train.checkpoint import atomic_path

log = logging.getLogger("mlip.simulate")

ENSEMBLES = ("nve", "nvt", "npt")
OPTIMIZERS = ("fire", "bfgs")


class SimulationError(ValueError):
    """A simulation that cannot run as asked (the message says why)."""


def read_structure(path, index=-1):
    """One structure from any file ASE reads; errors name the file."""
    import ase.io

    if not Path(path).is_file():
        raise SimulationError(f"{path}: no such file")
    try:
        atoms = ase.io.read(path, index=index)
    except Exception as err:  # ASE raises many types for unreadable files
        raise SimulationError(f"{path}: cannot read a structure: {err}") from None
    if isinstance(atoms, list):
        raise SimulationError(f"{path}: index {index!r} selects several structures; pick one")
    return atoms


def _dynamics(atoms, ensemble, timestep_fs, temperature, friction, tdamp_fs, pressure_gpa,
              pdamp_fs, seed):
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if ensemble == "nvt":
        from ase.md.langevin import Langevin

        # ASE's friction is in inverse ASE time units; the CLI takes it per fs.
        return Langevin(atoms, timestep=dt, temperature_K=temperature,
                        friction=friction / units.fs, rng=np.random.default_rng(seed))
    if not atoms.pbc.all():
        raise SimulationError("NPT needs a structure periodic in all three directions")
    from ase.md.nose_hoover_chain import IsotropicMTKNPT

    return IsotropicMTKNPT(atoms, timestep=dt, temperature_K=temperature,
                           pressure_au=pressure_gpa * units.GPa, tdamp=tdamp_fs * units.fs,
                           pdamp=pdamp_fs * units.fs)


def run_md(atoms, calculator, ensemble: str = "nve", temperature: float = 300.0,
           timestep: float = 0.5, steps: int = 1000, trajectory=None, logfile=None,
           interval: int = 10, friction: float = 0.01, tdamp: float = 100.0,
           pressure: float = 0.0, pdamp: float = 1000.0, seed: int = 0) -> dict:
    """Run MD; velocities start from a Maxwell-Boltzmann distribution at ``temperature`` K.

    ``timestep``, ``tdamp`` and ``pdamp`` in fs, ``friction`` (Langevin) in 1/fs, ``pressure``
    in GPa (NPT: ASE's isotropic MTK Nose-Hoover chains). Every ``interval`` steps the log
    gets time, temperature and potential, kinetic and total energy, and the trajectory a frame.
    Returns a summary: steps, final temperature, energies and total-energy drift per atom.
    """
    from ase.io import Trajectory
    from ase.md import MDLogger
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

    if ensemble not in ENSEMBLES:
        raise SimulationError(f"ensemble must be one of {ENSEMBLES}, got {ensemble!r}")
    if timestep <= 0 or steps < 0 or interval < 1:
        raise SimulationError("timestep must be > 0, steps >= 0 and interval >= 1")
    atoms.calc = calculator
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature,
                                 rng=np.random.default_rng(seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    dyn = _dynamics(atoms, ensemble, timestep, temperature, friction, tdamp, pressure, pdamp,
                    seed)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=interval)
    with _optional_atomic(trajectory) as traj_path, _optional_atomic(logfile) as log_path:
        if log_path is not None:
            dyn.attach(MDLogger(dyn, atoms, log_path, header=True, mode="w"), interval=interval)
        traj = Trajectory(traj_path, "w", atoms) if traj_path is not None else None
        try:
            if traj is not None:
                dyn.attach(traj.write, interval=interval)
            dyn.run(steps)
        finally:
            if traj is not None:
                traj.close()
    n = len(atoms)
    return {"ensemble": ensemble, "steps": int(steps), "time_ps": steps * timestep / 1000,
            "temperature_K": float(atoms.get_temperature()),
            "potential_energy": float(atoms.get_potential_energy()),
            "kinetic_energy": float(atoms.get_kinetic_energy()),
            "total_energy_drift_per_atom": float((totals[-1] - totals[0]) / n) if totals else 0.0}


def relax(atoms, calculator, optimizer: str = "fire", fmax: float = 0.05, steps: int = 1000,
          cell: bool = False, trajectory=None, logfile=None) -> dict:
    """Relax positions (and the cell with ``cell``, through FrechetCellFilter) until the largest
    force (and stress, in eV/Å³ times the cell volume per atom) is below ``fmax`` eV/Å."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    if optimizer not in OPTIMIZERS:
        raise SimulationError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if cell and not atoms.pbc.all():
        raise SimulationError("--cell needs a structure periodic in all three directions")
    atoms.calc = calculator
    target = FrechetCellFilter(atoms) if cell else atoms
    cls = FIRE if optimizer == "fire" else BFGS
    with _optional_atomic(trajectory) as traj_path:
        opt = cls(target, logfile=logfile if logfile is not None else None,
                  trajectory=traj_path)
        converged = bool(opt.run(fmax=fmax, steps=steps))
        if hasattr(opt, "close"):
            opt.close()
    forces = atoms.get_forces()
    return {"converged": converged, "steps": int(opt.nsteps),
            "energy": float(atoms.get_potential_energy()),
            "max_force": float(np.linalg.norm(forces, axis=1).max()),
            "volume": float(atoms.get_volume()) if atoms.pbc.all() else None}


class _optional_atomic:
    """:func:`atomic_path` for a path, or None through unchanged."""

    def __init__(self, path):
        self.path = path
        self._ctx = atomic_path(path) if path is not None else None

    def __enter__(self):
        return self._ctx.__enter__() if self._ctx is not None else None

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc) if self._ctx is not None else False

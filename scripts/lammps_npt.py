"""A 2 ps NPT run in LAMMPS (fix npt, Nose-Hoover MTK) with an mlip model fitted to EMT copper.

A random model has no equilibrium volume, so this first fits a small model to ASE's EMT Cu
(rattled and strained 32-atom cells, energies, forces and stresses; a few minutes on one
core), then runs ``mlip lammps`` with ``fix npt ... iso 0 0`` at 300 K and reports the volume
against EMT's, the temperature and the drift of LAMMPS's conserved energy (``econserve``).

    OMP_NUM_THREADS=1 python scripts/lammps_npt.py --work runs/lammps-npt

Writes the data, the model, the input and the thermo table under --work; prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ase.io
import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from lammps_md_check import summarise  # this directory, first on sys.path

INPUT = """units metal
atom_style atomic
boundary p p p
lattice fcc {a}
region box block 0 {reps} 0 {reps} 0 {reps}
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style mlip
pair_coeff * * Cu
velocity all create 600 {seed} dist gaussian mom yes rot yes
timestep 0.001
fix npt all npt temp 300 300 0.1 iso 0 0 1.0
thermo_style custom step time temp pe etotal econserve press vol
thermo_modify format float %.10g
thermo 50
run {steps}
"""


def emt_frames(n: int, seed: int = 0):
    """Cu fcc 2x2x2 cells, isotropically and randomly strained and rattled, with EMT labels."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6 * rng.uniform(0.96, 1.05), cubic=True) * (2, 2, 2)
        strain = np.eye(3) + rng.normal(scale=0.02, size=(3, 3))
        atoms.set_cell(atoms.cell.array @ (strain + strain.T) / 2, scale_atoms=True)
        atoms.rattle(rng.uniform(0.02, 0.12), seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        labels = dict(
            energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(),
            stress=atoms.get_stress(),
        )
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    return frames


def emt_volume_per_atom() -> float:
    from ase.eos import EquationOfState

    volumes, energies = [], []
    for a in np.linspace(3.5, 3.7, 9):
        atoms = bulk("Cu", "fcc", a=a, cubic=True)
        atoms.calc = EMT()
        volumes.append(atoms.get_volume() / len(atoms))
        energies.append(atoms.get_potential_energy() / len(atoms))
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float(v0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/lammps-npt")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--steps", type=int, default=2000, help="1 fs steps (default 2000 = 2 ps)")
    p.add_argument("--reps", type=int, default=3, help="fcc cells per side (3: 108 atoms)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    import mlip
    from mlip.integrations.lammps import run_lammps

    model = work / "best.pt"
    if not model.exists():
        ase.io.write(work / "emt.xyz", emt_frames(args.frames), format="extxyz")
        mlip.train(
            {
                "model": {
                    "name": "equivariant",
                    "hyperparameters": {"lmax": 1, "channels": 16, "num_layers": 2, "cutoff": 4.5},
                },
                "data": {"train": str(work / "emt.xyz"), "valid_fraction": 0.1, "max_atoms": 128},
                "loss": {"stress_weight": 100.0},
                "optim": {"lr": 0.01, "warmup_steps": 5},
                "run": {
                    "epochs": args.epochs,
                    "dtype": "float64",
                    "run_dir": str(work / "run"),
                    "tensorboard": False,
                },
            }
        )
        (work / "run" / "best.pt").replace(model)
    a0 = (4 * emt_volume_per_atom()) ** (1 / 3)
    (work / "in.npt").write_text(
        INPUT.format(a=a0, reps=args.reps, seed=args.seed, steps=args.steps)
    )
    summary = run_lammps(model, work / "in.npt", log=str(work / "log.lammps"), screen="none")
    n_atoms = 4 * args.reps**3
    summary.update(summarise(work / "log.lammps", atoms=n_atoms))
    summary["emt_volume_per_atom"] = round(emt_volume_per_atom(), 4)
    summary["ms_per_step"] = round(1e3 * summary["wall_seconds"] / args.steps, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""What a materials user checks on a TiAl model, against the DFT in the data (issue #22).

1. **Lattice constants.** The 315 two-atom cells of TiAl_tutorial.xyz are L1_0 TiAl under
   finite deformations, each with its DFT stress. The zero-stress cell is estimated the same
   way from the DFT stresses and from the model's stresses on the same cells (a linear fit of
   the diagonal stress against the three cell lengths, over the cells with no shear), so the
   estimator's own error cancels; the model's `mlip relax --cell` of the lowest-energy cell is
   reported beside them.
2. **Phonons at Gamma.** Force constants of the relaxed cell repeated 3x3x2 (beyond the cutoff)
   by central finite displacements of the two atoms: their symmetry Phi_ij = Phi_ji, the
   acoustic sum rule, and the Gamma frequencies (three ~0, no imaginary mode).
3. **NPT.** ``--npt-steps`` steps of `mlip md --ensemble npt` at 1000 K, 0 GPa, of the relaxed
   cell repeated to >= 500 atoms: the density over the run and the closest approach.

    python scripts/tial_checks.py tial-facet-s --json docs/data/tial_checks.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.io import write

from mlip._io import atomic_write_text
from mlip.calculator import MLIPCalculator
from mlip.data import keys as K
from mlip.data.readers import read_frames
from mlip.md_watch import analyse
from mlip.simulate import relax

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data/tial/TiAl_tutorial.xyz"


def zero_stress_cell(lengths: np.ndarray, stresses: np.ndarray) -> np.ndarray:
    """Cell lengths where the linear fit of the diagonal stress vanishes."""
    x = np.c_[lengths, np.ones(len(lengths))]
    coef, *_ = np.linalg.lstsq(x, stresses, rcond=None)
    return np.linalg.solve(coef[:3].T, -coef[3])


def lattice(frames: list[Atoms], calc) -> dict:
    cells = [a for a in frames if len(a) == 2]
    shear = [np.abs(a.cell[:] - np.diag(np.diag(a.cell[:]))).max() for a in cells]
    cells = [a for a, s in zip(cells, shear) if s < 1e-6]
    lengths = np.array([np.diag(a.cell[:]) for a in cells])
    dft = np.array([np.diag(a.info["dft_stress"]) for a in cells])
    mod = []
    for a in cells:
        b = a.copy()
        b.calc = calc
        mod.append(np.diag(b.get_stress(voigt=False)))
    start = min(cells, key=lambda a: a.info["dft_energy"]).copy()
    summary = relax(start, calc, fmax=1e-3, steps=2000, cell=True)
    return {
        "cells": len(cells),
        "dft_zero_stress": zero_stress_cell(lengths, dft).tolist(),
        "model_zero_stress": zero_stress_cell(lengths, np.array(mod)).tolist(),
        "model_relaxed": start.cell.cellpar().tolist(),
        "relax_converged": summary["converged"],
        "relaxed": start,
    }


def gamma_phonons(cell: Atoms, calc, h: float = 0.01) -> dict:
    sc = cell.repeat((3, 3, 2))
    n = len(cell)
    centre = list(range(n))  # ase's repeat keeps the original cell's atoms first
    phi = np.zeros((n, 3, len(sc), 3))
    for a, i in enumerate(centre):
        for d in range(3):
            forces = []
            for sign in (1, -1):
                disp = sc.copy()
                disp.positions[i, d] += sign * h
                disp.calc = calc
                forces.append(disp.get_forces())
            phi[a, d] = -(forces[0] - forces[1]) / (2 * h)
    # Gamma: sum each block over the images of the receiving atom
    image_of = np.tile(np.arange(n), len(sc) // n)  # and tiles them image by image
    dyn = np.zeros((n, 3, n, 3))
    for b in range(n):
        dyn[:, :, b, :] = phi[:, :, image_of == b, :].sum(axis=2)
    mass = cell.get_masses()
    dyn_m = dyn / np.sqrt(np.outer(mass, mass))[:, None, :, None]
    w2 = np.linalg.eigvalsh(0.5 * (dyn_m + dyn_m.transpose(2, 3, 0, 1)).reshape(3 * n, 3 * n))
    thz = np.sign(w2) * np.sqrt(np.abs(w2) * units._e / units._amu) * 1e10 / (2 * np.pi) / 1e12
    pair = phi[:, :, centre, :]  # Phi between the two atoms of cell 0, both ways
    return {
        "asymmetry_ev_a2": float(np.abs(pair - pair.transpose(2, 3, 0, 1)).max()),
        "acoustic_sum_ev_a2": float(np.abs(phi.sum(axis=2)).max()),
        "gamma_thz": thz.tolist(),
        "imaginary_optical": bool((thz[3:] < -0.1).any()),
    }


def npt(model: str, cell: Atoms, steps: int, workdir: Path) -> dict:
    reps = int(np.ceil((500 / len(cell)) ** (1 / 3)))
    big = cell.repeat((reps, reps, reps))
    write(workdir / "start.xyz", big, format="extxyz")
    traj = workdir / "npt.traj"
    cmd = [
        sys.executable,
        "-m",
        "mlip",
        "md",
        model,
        str(workdir / "start.xyz"),
        "--ensemble",
        "npt",
        "--temperature",
        "1000",
        "--timestep",
        "2",
        "--steps",
        str(steps),
        "--interval",
        "50",
        "--trajectory",
        str(traj),
        "--log",
        str(workdir / "npt.log"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout else {}
    report = analyse(workdir / "npt.log", traj) if traj.exists() else {}
    return {
        "atoms": len(big),
        "steps": steps,
        "timestep_fs": 2,
        "exit": proc.returncode,
        "status": summary.get("status"),
        **{k: report.get(k) for k in ("density_start", "density_mean_second_half",
                                      "density_std_second_half", "closest_approach",
                                      "temperature_mean_second_half")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--npt-steps", type=int, default=10000, help="2 fs steps (10000: 20 ps)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    frames = []
    for f in read_frames(args.data):  # mlip's reader: stress from the virial, ASE's sign
        a = Atoms(numbers=f[K.ATOMIC_NUMBERS], positions=f[K.POSITIONS], cell=f[K.CELL], pbc=True)
        a.info["dft_energy"], a.info["dft_stress"] = f[K.ENERGY], f[K.STRESS]
        frames.append(a)
    calc = MLIPCalculator(args.model, dtype="float64")
    out = {"model": args.model, "lattice": lattice(frames, calc)}
    relaxed = out["lattice"].pop("relaxed")
    out["phonons_gamma"] = gamma_phonons(relaxed, calc)
    print(json.dumps(out, indent=1), flush=True)
    if args.npt_steps:
        with tempfile.TemporaryDirectory() as tmp:
            out["npt"] = npt(args.model, relaxed, args.npt_steps, Path(tmp))
        print(json.dumps(out["npt"], indent=1))
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""``mlip md MODEL STRUCTURE``: molecular dynamics with ASE."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "md",
        help="run molecular dynamics (NVE, NVT Langevin, NPT) with a model",
        description="Run MD on STRUCTURE (any file ASE reads; the last frame unless --index) "
        "with MODEL through ASE: nve = velocity Verlet, nvt = Langevin, npt = isotropic MTK "
        "Nose-Hoover chains (periodic structures). Velocities start from a Maxwell-Boltzmann "
        "distribution at --temperature. Every --interval steps the log gets time (ps), "
        "temperature (K) and total, potential and kinetic energy (eV), and the trajectory a "
        "frame. Output files appear only when the run completes.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt)")
    p.add_argument("structure", metavar="STRUCTURE", help="starting structure")
    p.add_argument("--index", default="-1", help="frame of STRUCTURE to start from (default -1)")
    p.add_argument("--ensemble", choices=["nve", "nvt", "npt"], default="nve")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--steps", type=int, default=1000, help="number of steps (default 1000)")
    p.add_argument("--interval", type=int, default=10,
                   help="steps between log lines and trajectory frames (default 10)")
    p.add_argument("--trajectory", default=None, help="ASE trajectory file to write (.traj)")
    p.add_argument("--log", default=None, help="MD log file to write")
    p.add_argument("--friction", type=float, default=0.01, help="NVT Langevin friction, 1/fs")
    p.add_argument("--tdamp", type=float, default=100.0, help="NPT thermostat time, fs")
    p.add_argument("--pressure", type=float, default=0.0, help="NPT pressure, GPa")
    p.add_argument("--pdamp", type=float, default=1000.0, help="NPT barostat time, fs")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial velocities")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--dtype", default=None, choices=["float32", "float64"],
                   help="run the model in this dtype (default: the checkpoint's)")
    return p


def run(args) -> int:
    from ..calculator import MLIPCalculator
    from ..simulate import read_structure, run_md

    atoms = read_structure(args.structure, index=int(args.index))
    calc = MLIPCalculator(args.model, device=args.device, dtype=args.dtype)
    summary = run_md(atoms, calc, ensemble=args.ensemble, temperature=args.temperature,
                     timestep=args.timestep, steps=args.steps, trajectory=args.trajectory,
                     logfile=args.log, interval=args.interval, friction=args.friction,
                     tdamp=args.tdamp, pressure=args.pressure, pdamp=args.pdamp, seed=args.seed)
    print(json.dumps(summary))
    return 0

"""``mlip relax MODEL STRUCTURE``: geometry (and cell) optimisation with ASE."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._options import (
    add_charge_spin,
    add_device_dtype,
    calculator_and_structure,
    limit,
    limit_value,
    number,
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "relax",
        help="relax atomic positions (and with --cell the cell) with a model",
        description="Relax STRUCTURE (any file ASE reads) with MODEL until the largest force is "
        "below --fmax, with FIRE or BFGS; --cell relaxes the cell too through ASE's "
        "FrechetCellFilter (periodic structures). The relaxed structure, with its energy and "
        "forces, goes to --output (default: STRUCTURE's name with _relaxed.extxyz), written "
        "only when the relaxation has finished. Exit code 0 also when --steps ran out before "
        "convergence; the JSON summary says converged: false.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt)")
    p.add_argument("structure", metavar="STRUCTURE", help="structure to relax")
    p.add_argument("--index", default="-1", help="frame of STRUCTURE (default -1)")
    p.add_argument("--optimizer", choices=["fire", "bfgs"], default="fire")
    p.add_argument("--fmax", type=number(minimum=0, strict=True, unit="eV/Å"), default=0.05,
                   help="force threshold, eV/Å (0.05)")
    p.add_argument("--steps", type=number(int, minimum=0), default=1000,
                   help="at most this many steps (1000)")
    p.add_argument("--cell", action="store_true", help="relax the cell as well")
    p.add_argument("-o", "--output", default=None, help="relaxed structure file (extxyz)")
    p.add_argument("--trajectory", default=None, help="ASE trajectory of the steps (.traj)")
    g = p.add_argument_group("checks at every step, a stop is exit 1 (each off with 'none')")
    g.add_argument("--min-distance", type=limit, default=0.5, metavar="Å",
                   help="stop when two atoms come closer (default 0.5)")
    g.add_argument("--max-energy-drop", type=limit, default=1.0, metavar="EV_PER_ATOM",
                   help="stop when the energy falls this far below the start: a hole in the "
                        "model (default 1.0 eV/atom)")
    add_device_dtype(p)
    add_charge_spin(p)
    return p


def run(args) -> int:
    import ase.io

    from .._io import atomic_path
    from ..simulate import relax

    calc, atoms = calculator_and_structure(args)
    summary = relax(
        atoms,
        calc,
        optimizer=args.optimizer,
        fmax=args.fmax,
        steps=args.steps,
        cell=args.cell,
        trajectory=args.trajectory,
        logfile=sys.stderr,
        min_distance=limit_value(args.min_distance),
        max_energy_drop=limit_value(args.max_energy_drop),
    )
    output = args.output or str(Path(args.structure).with_suffix("")) + "_relaxed.extxyz"
    with atomic_path(output) as tmp:
        ase.io.write(tmp, atoms, format="extxyz")
    summary["output"] = output
    print(json.dumps(summary))
    return 0

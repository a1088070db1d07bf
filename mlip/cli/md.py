"""``mlip md MODEL STRUCTURE``: molecular dynamics with ASE, streamed and watched."""

from __future__ import annotations

import argparse
import json
import sys

from ._options import (
    add_charge_spin,
    add_device_dtype,
    calculator_and_structure,
    limit,
    limit_value,
    number,
)

#: exit status of a run that the watchdog stopped (1 is an error, 130 an interruption)
STOPPED = 3


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "md",
        help="run molecular dynamics (NVE, NVT Langevin, NPT) with a model",
        description="Run MD on STRUCTURE (any file ASE reads; the last frame unless --index) "
        "with MODEL through ASE: nve = velocity Verlet, nvt = Langevin, npt = isotropic MTK "
        "Nose-Hoover chains (periodic structures). Velocities start from a Maxwell-Boltzmann "
        "distribution at --temperature. Every --interval steps the log gets time (ps), "
        "temperature (K) and total, potential and kinetic energy (eV), and the trajectory a "
        "frame; both are flushed as they go, so a killed run leaves readable files, and "
        "--restart continues it from the trajectory's last frame. Then a watchdog checks the "
        "state: a run that gets too hot, brings atoms too close, drifts in energy (NVE) or "
        "falls apart (molecules) is stopped with exit status 3. The JSON summary on stdout "
        "says whether the run completed or why it stopped. See docs/md.md.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt)")
    p.add_argument(
        "structure",
        metavar="STRUCTURE",
        nargs="?",
        default=None,
        help="starting structure (not needed with --restart)",
    )
    p.add_argument("--index", default="-1", help="frame of STRUCTURE to start from (default -1)")
    p.add_argument("--ensemble", choices=["nve", "nvt", "npt"], default="nve")
    p.add_argument("--temperature", type=number(minimum=0, unit="K"), default=300.0,
                   help="K (default 300)")
    p.add_argument("--timestep", type=number(minimum=0, strict=True, unit="fs"), default=0.5,
                   help="fs (default 0.5)")
    p.add_argument(
        "--steps",
        type=number(int, minimum=0),
        default=1000,
        help="steps of the whole run, a continued one included (default 1000)",
    )
    p.add_argument(
        "--interval",
        type=number(int, minimum=1),
        default=10,
        help="steps between log lines, trajectory frames and watchdog checks (default 10)",
    )
    p.add_argument("--trajectory", default=None, help="ASE trajectory file to write (.traj)")
    p.add_argument("--log", default=None, help="MD log file to write")
    p.add_argument(
        "--restart",
        action="store_true",
        help="continue the run in --trajectory from its last frame (positions, "
        "velocities, cell; NPT's thermostat and barostat) up to --steps, appending to "
        "--trajectory and --log",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --trajectory and --log"
    )
    p.add_argument("--friction", type=number(minimum=0), default=0.01,
                   help="NVT Langevin friction, 1/fs")
    p.add_argument("--tdamp", type=number(minimum=0, strict=True, unit="fs"), default=100.0,
                   help="NPT thermostat time, fs")
    p.add_argument("--pressure", type=float, default=0.0, help="NPT pressure, GPa")
    p.add_argument("--pdamp", type=number(minimum=0, strict=True, unit="fs"), default=1000.0,
                   help="NPT barostat time, fs")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial velocities")
    w = p.add_argument_group("watchdog (each limit off with 'none')")
    w.add_argument(
        "--max-temperature",
        type=limit,
        default=None,
        metavar="K",
        help="stop above this temperature (default: max(5 x --temperature, 2000))",
    )
    w.add_argument(
        "--min-distance",
        type=limit,
        default=0.5,
        metavar="Å",
        help="stop when two atoms come closer (default 0.5)",
    )
    w.add_argument(
        "--max-drift",
        type=limit,
        default=0.01,
        metavar="EV_PER_ATOM",
        help="NVE: stop when the total energy is this far from its start (default 0.01 eV/atom)",
    )
    w.add_argument(
        "--no-fragment-check",
        action="store_true",
        help="molecules: do not stop when the bond graph splits into fragments",
    )
    w.add_argument("--no-watchdog", action="store_true", help="no checks at all")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    add_device_dtype(p)
    add_charge_spin(p)
    return p


def limits_from(args):
    from ..md_watch import Limits, default_max_temperature

    if args.no_watchdog:
        return Limits(max_temperature=None, min_distance=None, max_drift=None, fragments=False)

    t_max = args.max_temperature
    if t_max is None:
        t_max = default_max_temperature(args.temperature)
    return Limits(
        max_temperature=limit_value(t_max),
        min_distance=limit_value(args.min_distance),
        max_drift=limit_value(args.max_drift),
        fragments=not args.no_fragment_check,
    )


def run(args) -> int:
    from ..simulate import SimulationError, run_md

    if args.structure is None and not args.restart:
        raise SimulationError("STRUCTURE is needed unless --restart continues a trajectory")
    calc, atoms = calculator_and_structure(args, read=not args.restart)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    summary = run_md(
        atoms,
        calc,
        ensemble=args.ensemble,
        temperature=args.temperature,
        timestep=args.timestep,
        steps=args.steps,
        trajectory=args.trajectory,
        logfile=args.log,
        interval=args.interval,
        friction=args.friction,
        tdamp=args.tdamp,
        pressure=args.pressure,
        pdamp=args.pdamp,
        seed=args.seed,
        limits=limits_from(args),
        restart=args.restart,
        overwrite=args.overwrite,
        progress=progress,
    )
    print(json.dumps(summary))
    if summary["status"] == "stopped":
        where = f"; the run so far is in {args.trajectory}" if args.trajectory else ""
        print(
            f"mlip md: stopped at step {summary['stopped_at_step']}: "
            f"{summary['stop_message']}{where}",
            file=sys.stderr,
        )
        return STOPPED
    return 0

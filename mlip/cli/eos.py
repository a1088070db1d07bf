"""``mlip eos MODEL STRUCTURE``: equation of state (E(V) and a Birch-Murnaghan fit)."""

from __future__ import annotations

import argparse
import json

from ._options import add_charge_spin, add_device_dtype, calculator_and_structure, number


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eos",
        help="equation of state of a crystal: equilibrium volume, energy, bulk modulus",
        description="Relax STRUCTURE's atoms and cell with MODEL, scale it isotropically to "
        "--points volumes within ±--strain of the relaxed volume, relax each at its volume "
        "(atoms and cell shape), and fit an equation of state (ASE's EquationOfState). Prints "
        "a JSON summary: v0 (Å³ per cell and per atom), e0 (eV), b0_gpa, and the E(V) points; "
        "--output writes it to a file as well, --plot draws the curve (needs matplotlib).",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt) or shipped model name")
    p.add_argument("structure", metavar="STRUCTURE", help="periodic structure (any ASE file)")
    p.add_argument("--index", default="-1", help="frame of STRUCTURE (default -1)")
    p.add_argument(
        "--strain",
        type=number(minimum=0, strict=True),
        default=0.06,
        help="volume range, as a fraction of the relaxed volume (0.06: ±6%%)",
    )
    p.add_argument("--points", type=number(int, minimum=5), default=9, help="E(V) points (9)")
    p.add_argument(
        "--eos",
        choices=["birchmurnaghan", "murnaghan", "vinet", "sj"],
        default="birchmurnaghan",
        help="form of the fit (birchmurnaghan)",
    )
    p.add_argument(
        "--no-relax",
        action="store_true",
        help="scale STRUCTURE as given, without relaxing its cell first",
    )
    p.add_argument(
        "--fixed-shape",
        action="store_true",
        help="relax only the atoms at each volume, not the cell's shape",
    )
    p.add_argument(
        "--fmax",
        type=number(minimum=0, strict=True, unit="eV/Å"),
        default=0.01,
        help="force threshold of every relaxation, eV/Å (0.01)",
    )
    p.add_argument(
        "--steps",
        type=number(int, minimum=1),
        default=500,
        help="steps per relaxation at most (500)",
    )
    p.add_argument("-o", "--output", default=None, help="write the JSON summary here too")
    p.add_argument("--plot", default=None, help="draw E(V) and the fit to this image file")
    add_device_dtype(p)
    add_charge_spin(p)
    return p


def run(args) -> int:
    from .._io import atomic_write_text
    from ..eos import equation_of_state
    from ..simulate import SimulationError

    calc, atoms = calculator_and_structure(args)
    try:
        result = equation_of_state(
            atoms,
            calc,
            strain=args.strain,
            points=args.points,
            relax_first=not args.no_relax,
            relax_shape=not args.fixed_shape,
            fmax=args.fmax,
            steps=args.steps,
            form=args.eos,
        )
    except SimulationError as err:
        raise SimulationError(f"{args.structure}: {err}") from None
    text = json.dumps(result)
    if args.output:
        atomic_write_text(args.output, text + "\n")
    if args.plot:
        plot_eos(result, args.plot, title=args.structure)
    print(text)
    return 0


def plot_eos(result: dict, path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.eos import EquationOfState

    from .._io import atomic_path

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    eos = EquationOfState(result["volumes"], result["energies"], eos=result["form"])
    eos.plot(ax=ax, show=False)
    ax.set_title(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.rsplit(".", 1)[-1])
    plt.close(fig)

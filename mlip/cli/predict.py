"""``mlip predict MODEL INPUT... --output out.extxyz``: energies, forces and stress for many
structures."""

from __future__ import annotations

import argparse
import json
import sys

from ._options import add_charge_spin, add_device_dtype


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="predict energy, forces and stress for the structures in files",
        description="Run MODEL on every structure of the INPUT files (any format `mlip "
        "convert` reads, or an HDF5 cache) in batches and write the structures with the "
        "predicted energy, forces (and stress for periodic structures) to OUTPUT: extxyz, or "
        "HDF5 when it ends in .h5. A structure that cannot be used (unknown element, atoms on "
        "top of each other, ...) is skipped and reported by file and frame; the output is "
        "written under a temporary name and renamed when complete.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="structure files")
    p.add_argument("-o", "--output", required=True, help="output file (.extxyz/.xyz or .h5)")
    p.add_argument("--format", default=None, help="reader for the inputs (guessed by default)")
    p.add_argument("--max-atoms", type=int, default=2048, help="atoms per batch (default 2048)")
    add_device_dtype(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_charge_spin(p)
    return p


def run(args) -> int:
    from ..predict import predict_files

    if args.spin is not None and args.spin < 1:
        raise ValueError(f"--spin is the multiplicity 2S+1 (>= 1), got {args.spin:g}")
    summary = predict_files(
        args.model,
        args.inputs,
        args.output,
        format=args.format,
        max_atoms=args.max_atoms,
        device=args.device,
        dtype=args.dtype,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty(),
        charge=args.charge,
        spin=args.spin,
    )
    for failure in summary["failed"]:
        print(f"mlip predict: skipped {failure}", file=sys.stderr)
    print(
        json.dumps(
            {k: v for k, v in summary.items() if k != "failed"} | {"failed": len(summary["failed"])}
        )
    )
    return 0

"""``mlip convert INPUT... --output data.h5``: any supported format into the HDF5 cache."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "convert",
        help="convert data files (extxyz, ASE db, aselmdb, MPTrj, OC20, OUTCAR) to HDF5",
        description="Read INPUT files with the reader for their format and write one HDF5 "
        "cache with random access and provenance. Bad records are skipped and counted; past "
        "--max-bad-fraction the conversion stops and writes nothing.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="data files")
    p.add_argument("-o", "--output", required=True, help="HDF5 file to write")
    p.add_argument(
        "--format",
        default=None,
        help="reader: extxyz, asedb, aselmdb, mptrj, oc20, ase, or an ASE format name "
        "(vasp-out, ...); guessed from the file names when omitted",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--max-bad-fraction", type=float, default=0.01, help="default: 0.01")
    for key in ("energy", "forces", "stress", "virial"):
        p.add_argument(f"--{key}-key", default=None, help=f"extxyz/ASE: where the {key} is")
    p.add_argument(
        "--energy",
        default=None,
        help="MPTrj: corrected_total_energy (default), uncorrected_total_energy, "
        "energy_per_atom, ef_per_atom; OC20: referenced (default) or total",
    )
    return p


def run(args) -> int:
    from ..data.hdf5 import convert

    options = {"max_bad_fraction": args.max_bad_fraction}
    for key in ("energy_key", "forces_key", "stress_key", "virial_key", "energy"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    summary = convert(
        args.inputs, args.output, format=args.format, overwrite=args.overwrite, **options
    )
    bad = sum(s["bad"] for s in summary["sources"])
    print(
        json.dumps(
            {
                "output": args.output,
                "frames": summary["n_frames"],
                "atoms": summary["n_atoms"],
                "bad_records_skipped": bad,
            }
        )
    )
    return 0

"""Stability summary of a LAMMPS run: temperature, density or volume, conserved-energy drift
from its log, closest approach over the frames of its dump, as JSON.

    python scripts/lammps_md_check.py runs/tial-nvt/log.lammps --dump runs/tial-nvt/tial_nvt.dump

The log needs `thermo_style custom step time temp ...` (Time in ps); Econserve, Density,
Volume and Press are summarised when the thermo prints them. Statistics of the second half
are the equilibrated values; the drift is a linear fit of Econserve per atom over the whole run.
"""

from __future__ import annotations

import argparse
import json
import math

import ase.io
import numpy as np

from mlip.integrations.lammps import read_thermo
from mlip.md_watch import closest_distance


def summarise(log, dump=None, atoms: int | None = None, within: float = 3.0) -> dict:
    thermo = read_thermo(log)
    frames = ase.io.read(dump, ":", format="lammps-dump-text") if dump else []
    n = atoms or (len(frames[0]) if frames else None)
    half = {k: v[len(v) // 2 :] for k, v in thermo.items()}
    out = {"ps": float(thermo["Time"][-1]), "thermo_rows": len(thermo["Time"])}
    out["temperature_K"] = {
        # row 0 is the velocities as drawn (the examples draw them at 2T to equilibrate sooner)
        "min": round(float(thermo["Temp"][1:].min()), 1),
        "max": round(float(thermo["Temp"][1:].max()), 1),
        "mean_2nd_half": round(float(half["Temp"].mean()), 1),
        "std_2nd_half": round(float(half["Temp"].std()), 1),
    }
    for key, name in (("Density", "density_g_cm3"), ("Press", "pressure_bar")):
        if key in thermo:
            out[name] = {
                "start": round(float(thermo[key][0]), 4),
                "mean_2nd_half": round(float(half[key].mean()), 4),
                "std_2nd_half": round(float(half[key].std()), 4),
            }
    if "Volume" in thermo and n:
        out["volume_per_atom_A3"] = {
            "start": round(float(thermo["Volume"][0]) / n, 4),
            "mean_2nd_half": round(float(half["Volume"].mean()) / n, 4),
            "std_2nd_half": round(float(half["Volume"].std()) / n, 4),
        }
    if "Econserve" in thermo and n:
        slope = np.polyfit(thermo["Time"], thermo["Econserve"] / n, 1)[0]
        out["econserve_drift_meV_per_atom_per_ps"] = round(float(slope) * 1e3, 4)
        excursion = np.abs(thermo["Econserve"] - thermo["Econserve"][0]).max() / n
        out["econserve_max_excursion_meV_per_atom"] = round(float(excursion) * 1e3, 4)
    if frames:
        closest = min(closest_distance(f, within) for f in frames)
        out["frames"] = len(frames)
        out["closest_approach_A"] = None if math.isinf(closest) else round(closest, 3)
    out["atoms"] = n
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("log")
    p.add_argument("--dump", help="LAMMPS text dump with id type x y z (for closest approach)")
    p.add_argument("--atoms", type=int, help="atom count (default: from the dump)")
    p.add_argument("--json", help="also write the summary here")
    args = p.parse_args(argv)
    summary = summarise(args.log, args.dump, args.atoms)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()

"""Test errors of an mlip model and a MACE model computed by one code, through each calculator.

`scripts/train_vs_mace.py` reports each package's own test metrics (mlip's evaluation, the
table in MACE's log). This script evaluates both again the way a user meets them, through
``MLIPCalculator`` and mace-torch's ``MACECalculator`` in float64, on any number of extxyz
files, with the same formulas for both: energy RMSE and MAE per atom and per structure
(a molecule's energy error is what its benchmark papers quote), force RMSE and MAE per
component. A file that the model was not trained on, e.g. 3BPA's train_mixedT (MD at 300, 600
and 1200 K) for a model trained at 300 K, measures extrapolation.

    python scripts/eval_vs_mace.py runs/vs-mace-3bpa/mlip/best.pt \\
        runs/vs-mace-3bpa/mace/mace.model runs/vs-mace-3bpa/test.xyz \\
        ../shared/data/3bpa/train_mixedT.xyz --json runs/vs-mace-3bpa/eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from ase.io import read

ENERGY_KEYS = ("REF_energy", "energy")
FORCE_KEYS = ("REF_forces", "forces")


def references(atoms) -> tuple[float, np.ndarray]:
    """The reference energy and forces of a frame, under the keys train_vs_mace writes or the
    extxyz's own (read before any calculator replaces them)."""
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", {}) or {}
    energy = next((atoms.info[k] for k in ENERGY_KEYS if k in atoms.info), results.get("energy"))
    forces = next((atoms.arrays[k] for k in FORCE_KEYS if k in atoms.arrays), results.get("forces"))
    if energy is None or forces is None:
        raise SystemExit(f"a frame of {atoms.info.get('_file')} has no reference energy/forces")
    return float(energy), np.array(forces, dtype=np.float64)


def errors(calc, frames) -> dict:
    de, de_atom, df = [], [], []
    for atoms in frames:
        energy, forces = atoms.info["_ref"]
        atoms = atoms.copy()
        atoms.calc = calc
        e = atoms.get_potential_energy()
        de.append(e - energy)
        de_atom.append((e - energy) / len(atoms))
        df.append((atoms.get_forces() - forces).reshape(-1))
    de, de_atom, df = np.array(de), np.array(de_atom), np.concatenate(df)

    def rms(x):
        return float(1e3 * np.sqrt(np.mean(x**2)))

    def mae(x):
        return float(1e3 * np.mean(np.abs(x)))

    return {
        "structures": len(frames),
        "energy_rmse_mev": rms(de),
        "energy_mae_mev": mae(de),
        "energy_rmse_mev_per_atom": rms(de_atom),
        "energy_mae_mev_per_atom": mae(de_atom),
        "forces_rmse_mev_per_a": rms(df),
        "forces_mae_mev_per_a": mae(df),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mlip_checkpoint", help="an mlip checkpoint or shipped model name")
    p.add_argument("mace_model", help="a mace-torch .model file")
    p.add_argument("files", nargs="+", type=Path, help="extxyz files with reference E and F")
    p.add_argument("--json", type=Path, help="also write the errors here")
    args = p.parse_args(argv)

    from mace.calculators import MACECalculator

    from mlip.calculator import MLIPCalculator

    calcs = {
        "mlip": MLIPCalculator(args.mlip_checkpoint, dtype="float64"),
        "mace": MACECalculator(model_paths=args.mace_model, device="cpu", default_dtype="float64"),
    }
    report = {}
    for path in args.files:
        frames = read(path, ":")
        for atoms in frames:
            atoms.info["_file"] = str(path)
            atoms.info["_ref"] = references(atoms)
        report[str(path)] = {name: errors(calc, frames) for name, calc in calcs.items()}
    print("| file | model | structures | energy RMSE (meV) | per atom | force RMSE (meV/Å) | MAE |")
    print("|---|---|---|---|---|---|---|")
    for path, rows in report.items():
        for name, r in rows.items():
            print(
                f"| {Path(path).name} | {name} | {r['structures']} | {r['energy_rmse_mev']:.2f} | "
                f"{r['energy_rmse_mev_per_atom']:.3f} | {r['forces_rmse_mev_per_a']:.2f} | "
                f"{r['forces_mae_mev_per_a']:.2f} |"
            )
    if args.json:
        from mlip.train.checkpoint import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Vertical ionisation energies and electron affinities: a charge/spin model against GFN2-xTB.

For neutral closed-shell molecules of a config's test split (one geometry per formula), at the
same geometry: IE = E(+1, doublet) - E(0, singlet) and EA = E(0, singlet) - E(-1, doublet),
from the model through MLIPCalculator and from GFN2-xTB (tblite, ``pip install tblite``), the
level of theory of ../shared/data/xtb_charged. Prints a markdown table; ``--json`` writes it.

    python scripts/ionisation_energies.py xtb-charged-facet-s configs/xtb-charged-facet-s.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms


def _molecules(config_path: str, limit: int) -> list[Atoms]:
    from mlip.train.config import load_config
    from mlip.train.prepare import split_data

    _, _, test = split_data(load_config(config_path))
    seen, out = set(), []
    for frame in test:
        if float(frame.get("charge", 0)) != 0 or float(frame.get("spin", 1)) != 1:
            continue
        atoms = Atoms(numbers=frame["atomic_numbers"], positions=frame["positions"])
        formula = atoms.get_chemical_formula()
        if formula not in seen:
            seen.add(formula)
            atoms.info["name"] = frame.get("name", formula)
            out.append(atoms)
        if len(out) == limit:
            break
    return out


def _energy(atoms: Atoms, calc, charge: int, spin: int) -> float:
    a = atoms.copy()
    a.info.update(charge=charge, spin=spin)
    a.calc = calc(charge, spin)
    return float(a.get_potential_energy())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint or pretrained name (a charge/spin model)")
    p.add_argument("config", help="training config whose test split gives the geometries")
    p.add_argument("--molecules", type=int, default=12)
    p.add_argument("--json", default=None, help="write the rows and summary here")
    args = p.parse_args(argv)

    from tblite.ase import TBLite

    from mlip import MLIPCalculator

    mlip_calc = MLIPCalculator(args.model, dtype="float64")
    if not mlip_calc.model.uses_charge_spin:
        p.error(f"{args.model} was built without charge/spin conditioning")

    def model(charge, spin):
        return mlip_calc

    def xtb(charge, spin):
        return TBLite(method="GFN2-xTB", charge=charge, multiplicity=spin, verbosity=0)

    rows = []
    for atoms in _molecules(args.config, args.molecules):
        row = {"formula": atoms.get_chemical_formula(), "name": atoms.info["name"]}
        for label, calc in (("model", model), ("xtb", xtb)):
            e0 = _energy(atoms, calc, 0, 1)
            row[f"ie_{label}"] = _energy(atoms, calc, 1, 2) - e0
            row[f"ea_{label}"] = e0 - _energy(atoms, calc, -1, 2)
        rows.append(row)
    ie_err = np.array([r["ie_model"] - r["ie_xtb"] for r in rows])
    ea_err = np.array([r["ea_model"] - r["ea_xtb"] for r in rows])
    summary = {"n": len(rows), "ie_mae_eV": float(np.abs(ie_err).mean()),
               "ea_mae_eV": float(np.abs(ea_err).mean()),
               "ie_all_positive": bool(all(r["ie_model"] > 0 for r in rows))}
    print("| molecule | IE model (eV) | IE GFN2-xTB (eV) | EA model (eV) | EA GFN2-xTB (eV) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['formula']} | {r['ie_model']:.2f} | {r['ie_xtb']:.2f} | "
              f"{r['ea_model']:.2f} | {r['ea_xtb']:.2f} |")
    print(f"\nIE MAE {summary['ie_mae_eV']:.3f} eV, EA MAE {summary['ea_mae_eV']:.3f} eV over "
          f"{len(rows)} molecules; every model IE positive: {summary['ie_all_positive']}")
    if args.json:
        path = Path(args.json)
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump({"rows": rows, "summary": summary}, f, indent=2)
        os.replace(tmp, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Are the worst-fitted structures' GFN2-xTB labels sound? Recompute them with tblite.

A model's force RMSE on the xtb_charged data is dominated by a few structures (an
``error_profile.py`` profile lists them). Before blaming the model, check the labels: for each
of the profile's worst structures this recomputes GFN2-xTB (tblite, ``pip install tblite``, the
level of theory of ../shared/data/xtb_charged) at the stored geometry, charge and
multiplicity, and reports

- the energy and force differences to the stored labels (are they reproducible?),
- a central finite difference of the energy along the stored forces (are the forces the
  gradient of the energy, as a conservative model assumes?),
- the highest occupied orbital energy: positive for an anion whose extra electron is unbound,
  which GFN2-xTB's minimal basis keeps on the molecule anyway.

    python scripts/error_profile.py xtb-charged-facet-s --config configs/xtb-charged-facet-s.yaml \\
        --split valid --json valid_profile.json
    python scripts/xtb_reference_check.py valid_profile.json \\
        --config configs/xtb-charged-facet-s.yaml --split valid
"""

from __future__ import annotations

import argparse
import json

import numpy as np

BOHR = 0.529177210903  # Å
HARTREE = 27.211386245988  # eV
STEP = 1e-3  # Å, along the unit force direction


def _xtb(numbers, positions, charge: float, spin: float):
    """GFN2-xTB energy (eV), forces (eV/Å) and highest occupied orbital energy (eV)."""
    from tblite.interface import Calculator

    calc = Calculator("GFN2-xTB", numbers, positions / BOHR, charge=charge, uhf=int(spin) - 1)
    calc.set("verbosity", 0)
    res = calc.singlepoint()
    eps = np.asarray(res.get("orbital-energies")) * HARTREE
    occ = np.asarray(res.get("orbital-occupations"))
    occupied = (occ.max(0) if occ.ndim == 2 else occ) > 0.5
    return (float(res.get("energy")) * HARTREE, -np.asarray(res.get("gradient")) * HARTREE / BOHR,
            float(eps[occupied].max()))


def check(frame) -> dict:
    """One stored structure against tblite: differences in meV and meV/Å, orbital in eV."""
    from mlip.data import keys as K

    z = np.asarray(frame[K.ATOMIC_NUMBERS])
    pos = np.asarray(frame[K.POSITIONS], dtype=float)
    charge, spin = float(frame[K.CHARGE]), float(frame[K.SPIN])
    energy, forces, homo = _xtb(z, pos, charge, spin)
    stored = np.asarray(frame[K.FORCES], dtype=float)
    direction = stored / np.linalg.norm(stored)
    plus = _xtb(z, pos + STEP * direction, charge, spin)[0]
    minus = _xtb(z, pos - STEP * direction, charge, spin)[0]
    return {
        "name": str(frame.get("name")), "charge": charge, "spin": spin,
        "energy_difference": 1000 * (energy - float(frame[K.ENERGY])),
        "force_rmse_difference": 1000 * float(np.sqrt(((forces - stored) ** 2).mean())),
        "force_along_direction": float((stored * direction).sum()),
        "finite_difference": -(plus - minus) / (2 * STEP),
        "highest_occupied_orbital": homo,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", help="a JSON profile written by scripts/error_profile.py")
    p.add_argument("--config", required=True, help="the training config the profile used")
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)

    from mlip._io import atomic_write_text
    from mlip.train.config import load_config
    from mlip.train.prepare import split_data

    worst = json.load(open(args.profile))["structures"]["worst"]
    _, valid, test = split_data(load_config(args.config))
    split = {str(f.get("name")): f for f in (valid if args.split == "valid" else test)}
    missing = [w["name"] for w in worst if w["name"] not in split]
    if missing:
        raise SystemExit(f"{args.profile}: {missing[0]} is not in the {args.split} split of "
                         f"{args.config}")
    rows = []
    print("| structure | state | model force RMSE (meV/Å) | ΔE (meV) | ΔF RMSE (meV/Å) | "
          "F·d stored / -dE/dd (eV/Å) | highest occupied orbital (eV) |")
    print("|---|---|---|---|---|---|---|")
    for w in worst:
        row = {**check(split[w["name"]]), "model_force_rmse": w["force_rmse"]}
        rows.append(row)
        print(f"| {row['name']} | {row['charge']:+g}/{row['spin']:g} | "
              f"{row['model_force_rmse']:.0f} | {row['energy_difference']:.2f} | "
              f"{row['force_rmse_difference']:.2f} | {row['force_along_direction']:.4f} / "
              f"{row['finite_difference']:.4f} | {row['highest_occupied_orbital']:.2f} |")
    if args.json:
        atomic_write_text(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

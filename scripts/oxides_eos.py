"""Equations of state of the BO2 polymorphs in oxides.db: a model against the DFT (issue #22).

The database holds, for each oxide BO2 (B = Ti, V, Ru, Ir, Sn) and each polymorph, cells
relaxed at a series of volumes (PBE, Mehta et al. 2015). A family is one metal and one
polymorph (its space group, found with spglib on the lowest-energy cell). For every family the
script fits Birch-Murnaghan to

* the DFT points (the reference),
* the model's energies of the same cells (the E(V) points as given), and
* the model's own equation of state (``mlip.eos.equation_of_state``, the `mlip eos` verb):
  a full cell relaxation of the family's lowest-energy DFT cell, then the cell scaled to
  volumes within ±8 % (``--strain``) and relaxed at each volume,

and reports the equilibrium volume and bulk modulus errors in %, and whether the model orders
each metal's polymorphs as the DFT does (by the fitted minimum energy per atom).

    python scripts/oxides_eos.py oxides-facet-s --json docs/data/oxides_eos.json \
        --plot docs/img/oxides_eos.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mlip._io import atomic_write_text
from mlip.calculator import MLIPCalculator
from mlip.data.validate import StructureError
from mlip.eos import equation_of_state, fit_eos
from mlip.simulate import SimulationError

ROOT = Path(__file__).resolve().parents[1]
DB = ROOT.parent / "shared/data/oxides/oxides.db"
NAMES = {
    225: "fluorite",
    136: "rutile",
    205: "pyrite",
    60: "columbite",
    61: "brookite",
    141: "anatase",
    14: "baddeleyite",
    12: "monoclinic C2/m",
}


def families(db_path: Path) -> dict:
    """``{(metal, polymorph): [atoms, ...]}`` sorted by volume."""
    import spglib
    from ase.db import connect

    groups = defaultdict(list)
    for row in connect(str(db_path)).select():
        atoms = row.toatoms()
        metal = next(s for s in atoms.get_chemical_symbols() if s != "O")
        cp = atoms.cell.cellpar()
        shape = (len(atoms), tuple(np.round(cp[3:] / 5) * 5), bool(np.allclose(cp[:3], cp[0])))
        groups[(metal, shape)].append(atoms)
    out = {}
    for (metal, _), members in groups.items():
        low = min(members, key=lambda a: a.get_potential_energy() / len(a))
        cell = (low.cell[:], low.get_scaled_positions(), low.numbers)
        number = spglib.get_symmetry_dataset(cell, symprec=0.1).number
        label = f"{NAMES.get(number, 'SG')} ({number}, {len(low)} atoms)"
        out[(metal, label)] = sorted(members, key=lambda a: a.get_volume())
    return dict(sorted(out.items()))


def per_atom(fit: dict, n: int) -> dict:
    return {"v0": fit["v0"] / n, "e0": fit["e0"] / n, "b0_gpa": fit["b0_gpa"]}


def compare(model, db_path: Path, strain, points, fmax, metals=None, relaxed=None) -> list[dict]:
    calc = MLIPCalculator(model, dtype="float64")
    rows = []
    for (metal, label), members in families(db_path).items():
        if metals and metal not in metals:
            continue
        n = len(members[0])
        volumes = [a.get_volume() for a in members]
        row = {"metal": metal, "polymorph": label, "points": len(members)}
        dft_e = [a.get_potential_energy() for a in members]
        model_e = []
        for a in members:
            b = a.copy()
            b.calc = calc
            model_e.append(b.get_potential_energy())
        row["dft_rmse_mev_per_atom"] = 1e3 * float(
            np.sqrt(
                np.mean((np.subtract(model_e, dft_e) - np.mean(np.subtract(model_e, dft_e))) ** 2)
            )
            / n
        )
        for key, energies in (("dft", dft_e), ("model_points", model_e)):
            try:
                row[key] = per_atom(fit_eos(volumes, energies, name=f"{metal} {label}"), n)
            except SimulationError as err:
                row[key] = {"error": str(err)}
        start = min(members, key=lambda a: a.get_potential_energy()).copy()
        if relaxed and not any(label.startswith(p) for p in relaxed):
            row["model_eos"] = {"error": "not run (--relaxed-polymorphs)"}
        else:
            try:
                own = equation_of_state(start, calc, strain=strain, points=points, fmax=fmax)
                row["model_eos"] = {
                    "v0": own["v0_per_atom"],
                    "e0": own["e0_per_atom"],
                    "b0_gpa": own["b0_gpa"],
                    "converged": own["all_converged"],
                }
                row["model_eos_curve"] = {"volumes": own["volumes"], "energies": own["energies"]}
            except (SimulationError, StructureError) as err:  # a relaxation that collapsed
                row["model_eos"] = {"error": str(err)}
        row["dft_curve"] = {"volumes": volumes, "energies": dft_e, "model": model_e}
        for key in ("model_points", "model_eos"):
            if "error" not in row["dft"] and "error" not in row[key]:
                row[key]["v0_err_pct"] = 100 * (row[key]["v0"] / row["dft"]["v0"] - 1)
                row[key]["b0_err_pct"] = 100 * (row[key]["b0_gpa"] / row["dft"]["b0_gpa"] - 1)
        rows.append(row)
        print(f"{metal} {label}: done", flush=True)
    return rows


def ordering(rows: list[dict], key: str) -> dict:
    """Per metal: the polymorphs by DFT minimum energy, and whether ``key`` orders them so."""
    out = {}
    for metal in sorted({r["metal"] for r in rows}):
        ok = [r for r in rows if r["metal"] == metal and "e0" in r["dft"] and "e0" in r[key]]
        dft = [r["polymorph"] for r in sorted(ok, key=lambda r: r["dft"]["e0"])]
        mod = [r["polymorph"] for r in sorted(ok, key=lambda r: r[key]["e0"])]
        if len(ok) >= 2:  # an order needs two polymorphs
            out[metal] = {"dft": dft, "model": mod, "same": dft == mod}
    return out


def table(rows: list[dict]) -> str:
    def cell(d, k, fmt):
        if k in d:
            return format(d[k], fmt)
        return "not run" if "not run" in d.get("error", "") else "failed"

    lines = [
        "| metal | polymorph | DFT V0 (Å³/atom) | DFT B0 (GPa) | model V0 err, same cells (%) "
        "| model B0 err, same cells (%) | `mlip eos` V0 err (%) | `mlip eos` B0 err (%) "
        "| E RMSE on the curve (meV/atom, offset removed) |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        d, p, e = r["dft"], r["model_points"], r["model_eos"]
        lines.append(
            f"| {r['metal']} | {r['polymorph']} | {cell(d, 'v0', '.3f')} | "
            f"{cell(d, 'b0_gpa', '.0f')} | {cell(p, 'v0_err_pct', '+.2f')} | "
            f"{cell(p, 'b0_err_pct', '+.1f')} | {cell(e, 'v0_err_pct', '+.2f')} | "
            f"{cell(e, 'b0_err_pct', '+.1f')} | {r['dft_rmse_mev_per_atom']:.1f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlip._io import atomic_path

    metals = sorted({r["metal"] for r in rows})
    fig, axes = plt.subplots(1, len(metals), figsize=(4 * len(metals), 3.6))
    for ax, metal in zip(np.atleast_1d(axes), metals):
        for i, r in enumerate(r for r in rows if r["metal"] == metal):
            n = int(r["polymorph"].split(", ")[1].split()[0])
            c = r["dft_curve"]
            v = np.array(c["volumes"]) / n
            color = f"C{i}"
            ax.plot(
                v,
                np.array(c["energies"]) / n,
                "o",
                color=color,
                ms=4,
                label=r["polymorph"].split(" (")[0],
            )
            ax.plot(v, np.array(c["model"]) / n, "-", color=color, lw=1)
            if "model_eos_curve" in r:
                m = r["model_eos_curve"]
                ax.plot(
                    np.array(m["volumes"]) / n,
                    np.array(m["energies"]) / n,
                    "--",
                    color=color,
                    lw=0.8,
                )
        ax.set_title(f"{metal}O2", fontsize=10)
        ax.set_xlabel("V (Å³/atom)")
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("E (eV/atom)")
    fig.suptitle("DFT (points), model on the same cells (lines), `mlip eos` (dashed)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="checkpoint or shipped model name")
    parser.add_argument("--db", type=Path, default=DB)
    parser.add_argument("--strain", type=float, default=0.08)
    parser.add_argument("--points", type=int, default=9)
    parser.add_argument("--fmax", type=float, default=0.01, help="eV/Å, every relaxation")
    parser.add_argument(
        "--metals",
        nargs="*",
        default=None,
        help="only these (e.g. to split the work over processes, then --merge their JSON files)",
    )
    parser.add_argument(
        "--merge",
        nargs="*",
        type=Path,
        default=None,
        help="report from these JSON files instead of computing",
    )
    parser.add_argument(
        "--relaxed-polymorphs",
        nargs="*",
        default=None,
        help="run `mlip eos` (relaxations) only for these polymorphs",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    if args.merge:
        rows = [r for path in args.merge for r in json.loads(path.read_text())["families"]]
        rows.sort(key=lambda r: (r["metal"], r["polymorph"]))
    else:
        rows = compare(
            args.model,
            args.db,
            args.strain,
            args.points,
            args.fmax,
            args.metals,
            args.relaxed_polymorphs,
        )
    result = {
        "model": args.model,
        "families": rows,
        "ordering_same_cells": ordering(rows, "model_points"),
        "ordering_mlip_eos": ordering(rows, "model_eos"),
    }
    print(table(rows))
    for key in ("ordering_same_cells", "ordering_mlip_eos"):
        same = sum(v["same"] for v in result[key].values())
        print(f"{key}: DFT ordering reproduced for {same} of {len(result[key])} metals")
        for metal, v in result[key].items():
            if not v["same"]:
                print(f"  {metal}: DFT {v['dft']}, model {v['model']}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()

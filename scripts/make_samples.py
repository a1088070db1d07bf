"""Regenerate ``datasets/samples/`` and ``datasets/acac/`` from the real DFT data in
/work/shared/data (or ``--data``). Every sample holds real DFT values, written in the real layout
of the format it imitates; see datasets/samples/README.md for what came from where.

    python scripts/make_samples.py [--data /work/shared/data] [--out datasets]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa


def mptrj_sample(data: Path, out: Path) -> None:
    """MPTrj layout from the HfO2 extxyz and OUTCAR frames (VASP, SCAN): stress back to VASP's
    kBar, compression positive; energies as total; per-atom fields derived from them."""
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = list(ase.io.iread(data / "hfo2/hfo2.extxyz"))
    frames += [ase.io.read(p, format="vasp-out") for p in sorted(data.glob("hfo2/outcars/*/*"))[:3]]
    doc = {}
    for i, atoms in enumerate(frames):
        mp_id = f"sample-hfo2-{i // 2}"
        structure = AseAtomsAdaptor.get_structure(atoms)
        energy = float(atoms.get_potential_energy())
        stress_kbar = -atoms.get_stress(voigt=False) / (0.1 * GPa)
        doc.setdefault(mp_id, {})[f"{mp_id}-{i % 2}-{i}"] = {
            "structure": structure.as_dict(),
            "uncorrected_total_energy": energy,
            "corrected_total_energy": energy,  # no MP2020 correction applies to a SCAN sample
            "energy_per_atom": energy / len(atoms),
            "ef_per_atom": None,
            "e_per_atom_relaxed": None,
            "ef_per_atom_relaxed": None,
            "force": atoms.get_forces().tolist(),
            "stress": stress_kbar.tolist(),
            "magmom": None,
            "bandgap": None,
            "mp_id": mp_id,
        }
    (out / "mptrj_sample.json").write_text(json.dumps(doc))


def oc20_sample(data: Path, out: Path) -> None:
    """An OC20 S2EF chunk: the real adsorbate+slab frame and two rattled copies whose energies
    are the real one (the copies are labelled in the txt as frames 1 and 2 of the system)."""
    atoms = ase.io.read(data / "oc20/oc20_frame_atoms.json")
    reference = -130.0  # stands in for the system's slab+gas reference; see samples/README.md
    frames, lines = [], []
    for k in range(3):
        # only the columns OC20's extxyz files have: species, pos, move_mask, tags, forces
        a = ase.Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc,
                      tags=atoms.get_tags(), constraint=atoms.constraints)  # fmt: skip
        a.calc = SinglePointCalculator(a, energy=atoms.get_potential_energy(),
                                       free_energy=atoms.get_potential_energy(),
                                       forces=atoms.get_forces(apply_constraint=False))  # fmt: skip
        if k:
            a.positions[a.get_tags() > 0] += np.random.default_rng(k).normal(0, 0.01, (2, 3))
        frames.append(a)
        lines.append(f"random1234567,frame{k},{reference}")
    ase.io.write(out / "oc20_s2ef_sample.extxyz", frames, format="extxyz")
    (out / "oc20_s2ef_sample.txt").write_text("\n".join(lines) + "\n")


def aselmdb_sample(data: Path, out: Path, n: int = 24) -> None:
    """OMol25 layout: the first ``n`` rows of xtb_charged, charge and spin in data and keys."""
    import ase.db

    target = out / "omol_sample.aselmdb"
    for p in (target, Path(str(target) + "-lock")):
        p.unlink(missing_ok=True)
    src = ase.db.connect(data / "xtb_charged/train.aselmdb", type="aselmdb", readonly=True)
    with ase.db.connect(target, type="aselmdb") as dst:
        for row in src.select(limit=n):
            kvp = {k: row.__dict__[k] for k in row._keys}
            dst.write(row.toatoms(), key_value_pairs=kvp, data=dict(row.data))
    Path(str(target) + "-lock").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "datasets")
    args = parser.parse_args()
    samples = args.out / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    mptrj_sample(args.data, samples)
    oc20_sample(args.data, samples)
    aselmdb_sample(args.data, samples)
    (args.out / "acac").mkdir(exist_ok=True)
    for name in ("train_300K.xyz", "test_MD_300K.xyz", "isolated_atoms.xyz", "LICENSE_upstream"):
        shutil.copyfile(args.data / "acac" / name, args.out / "acac" / name)
    print(f"samples written to {samples}")


if __name__ == "__main__":
    main()

"""Helpers for the LAMMPS tests: data files written at full precision, dumps read back."""

from __future__ import annotations

import numpy as np
from ase.data import atomic_masses, atomic_numbers


def lammps_frame_cell(lx, ly, lz, xy=0.0, xz=0.0, yz=0.0) -> np.ndarray:
    """A cell in LAMMPS's restricted triclinic form (rows a, b, c), so no rotation is needed."""
    return np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])


def write_data(path, atoms, elements, velocities=None) -> None:
    """LAMMPS ``atomic`` data file of ``atoms`` (cell in LAMMPS form), types in ``elements`` order.

    ``velocities`` in Å/ps. Every number is written with repr, so LAMMPS reads the same doubles.
    """
    cell = atoms.cell.array
    assert np.allclose(cell[np.triu_indices(3, 1)], 0.0), "cell must be lower triangular"
    types = [elements.index(s) + 1 for s in atoms.get_chemical_symbols()]
    lines = ["mlip test data", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    c = [float(v) for v in cell.reshape(-1)]  # numpy scalars repr as np.float64(...)
    lines += [f"0.0 {c[0]!r} xlo xhi", f"0.0 {c[4]!r} ylo yhi", f"0.0 {c[8]!r} zlo zhi"]
    lines += [f"{c[3]!r} {c[6]!r} {c[7]!r} xy xz yz", "", "Masses", ""]
    lines += [f"{t} {float(atomic_masses[atomic_numbers[s]])!r}" for t, s in enumerate(elements, 1)]
    lines += ["", "Atoms # atomic", ""]
    for i, (t, r) in enumerate(zip(types, atoms.positions), 1):
        lines.append(f"{i} {t} " + " ".join(repr(float(c)) for c in r))
    if velocities is not None:
        lines += ["", "Velocities", ""]
        for i, v in enumerate(velocities, 1):
            lines.append(f"{i} " + " ".join(repr(float(c)) for c in v))
    path.write_text("\n".join(lines) + "\n")


def read_dump(path) -> dict[str, np.ndarray]:
    """The last frame of a LAMMPS custom dump as columns sorted by atom id."""
    lines = path.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("ITEM: ATOMS"))
    names = lines[start].split()[2:]
    rows = np.array([[float(v) for v in line.split()] for line in lines[start + 1 :]])
    rows = rows[np.argsort(rows[:, names.index("id")])]
    return {name: rows[:, k] for k, name in enumerate(names)}

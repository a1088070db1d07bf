"""Small, awkward structures for the physics contract: triclinic, slab, molecule, lone atom."""

from __future__ import annotations

import numpy as np
from ase import Atoms


def random_positions(rng, n, cell, min_dist=1.2, pbc=True):
    """Uniform positions in ``cell`` at least ``min_dist`` apart (minimum image if periodic)."""
    from ase.geometry import get_distances

    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 20000:
            raise RuntimeError("could not place atoms; make the cell larger")
        p = rng.random(3) @ cell
        if out:
            _, d = get_distances([p], out, cell=cell, pbc=pbc)
            if d.min() < min_dist:
                continue
        out.append(p)
    return np.array(out)


def triclinic_crystal(elements, n_atoms=6, seed=0) -> Atoms:
    rng = np.random.default_rng(seed)
    cell = np.array([[4.2, 0.0, 0.0], [1.1, 3.9, 0.0], [-0.7, 0.9, 4.4]])
    cell = cell + rng.normal(scale=0.1, size=(3, 3))
    pos = random_positions(rng, n_atoms, cell)
    numbers = rng.choice(elements, size=n_atoms)
    return Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True)


def slab(elements, n_atoms=5, seed=1) -> Atoms:
    rng = np.random.default_rng(seed)
    cell = np.array([[3.8, 0.0, 0.0], [0.9, 3.6, 0.0], [0.0, 0.0, 14.0]])
    pos = random_positions(rng, n_atoms, cell * [[1], [1], [0.25]], pbc=[True, True, False])
    numbers = rng.choice(elements, size=n_atoms)
    return Atoms(numbers=numbers, positions=pos, cell=cell, pbc=[True, True, False])


def molecule(elements, n_atoms=5, seed=2) -> Atoms:
    rng = np.random.default_rng(seed)
    pos = random_positions(rng, n_atoms, np.eye(3) * 3.2, min_dist=1.0, pbc=False)
    numbers = rng.choice(elements, size=n_atoms)
    return Atoms(numbers=numbers, positions=pos, pbc=False)


def contract_structures(elements) -> dict[str, Atoms]:
    """The named structures every model is checked on."""
    return {
        "triclinic": triclinic_crystal(elements),
        "slab": slab(elements),
        "molecule": molecule(elements),
    }


def random_rotation(rng, reflect=False) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    if reflect:
        q = -q
    return q

"""Small, awkward structures for the physics contract: triclinic, slab, molecule, lone atom."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..data.validate import lowest_multiplicity


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


def with_charge_spin(atoms: Atoms, charge: int, unpaired_extra: int = 0) -> Atoms:
    """A copy with ``info["charge"]`` and ``info["spin"]``: the lowest multiplicity that the
    electron count allows, plus ``2 * unpaired_extra``."""
    out = atoms.copy()
    electrons = int(atoms.numbers.sum()) - charge
    out.info["charge"] = charge
    out.info["spin"] = lowest_multiplicity(electrons) + 2 * unpaired_extra
    return out


def charged_structures(elements) -> dict[str, Atoms]:
    """The contract structures in charge states: a high-spin cation, an anion, a cation."""
    base = contract_structures(elements)
    return {
        "triclinic": with_charge_spin(base["triclinic"], +1, unpaired_extra=1),
        "slab": with_charge_spin(base["slab"], -1),
        "molecule": with_charge_spin(base["molecule"], +1),
    }


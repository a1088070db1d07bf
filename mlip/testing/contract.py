"""The physics contract as functions: each returns a measured error, or raises AssertionError.

Anyone who writes a model can call these (see :mod:`mlip.testing.mixin` for the pytest form).
Errors are relative to the size of the quantity, with a floor so that zero forces compare sanely.
"""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms

from ..data import keys as K
from ..data.graph import atoms_to_frame, batch_graphs, frame_to_graph
from ..data.validate import lowest_multiplicity
from ..inference import run_batch
from .structures import random_rotation


def evaluate(model, structures, stress: bool = True) -> list[dict[str, np.ndarray]]:
    """Energy, node energies, forces and stress of ASE structures, batched in one forward.

    Graphs are built without the input checks (``validate=False``): the contract probes
    structures, such as far-apart atoms, that the checks exist to question."""
    if isinstance(structures, Atoms):
        structures = [structures]
    graphs = [frame_to_graph(atoms_to_frame(a), model.cutoff, validate=False) for a in structures]
    return run_batch(model, graphs, stress=bool(stress))


def _rel(a, b, floor=1e-3) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def _check(name, err, tol):
    if tol is not None and not err <= tol:
        raise AssertionError(f"{name}: error {err:.3e} exceeds tolerance {tol:.1e}")
    return err


def rotation_error(model, atoms: Atoms, seed=0, reflect=False, tol=None) -> float:
    """Energy invariance and force/stress equivariance under a rotation (and reflection)."""
    q = random_rotation(np.random.default_rng(seed), reflect=reflect)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ q.T
    rotated.cell = atoms.cell.array @ q.T
    periodic = atoms.pbc.any()
    a, b = evaluate(model, [atoms, rotated], stress=periodic)
    errs = [_rel(b["energy"], a["energy"]), _rel(b["forces"], a["forces"] @ q.T)]
    if periodic:
        errs.append(_rel(b["stress"], q @ a["stress"] @ q.T))
    return _check("reflection" if reflect else "rotation", max(errs), tol)


def translation_permutation_error(model, atoms: Atoms, seed=0, tol=None) -> float:
    rng = np.random.default_rng(seed)
    moved = atoms.copy()
    moved.positions = atoms.positions + rng.normal(size=3) * 3.0
    perm = rng.permutation(len(atoms))
    permuted = atoms[perm]
    a, t, p = evaluate(model, [atoms, moved, permuted], stress=atoms.pbc.any())
    errs = [
        _rel(t["energy"], a["energy"]), _rel(t["forces"], a["forces"]),
        _rel(p["energy"], a["energy"]), _rel(p["forces"], a["forces"][perm]),
        _rel(p["node_energy"], a["node_energy"][perm]),
    ]
    return _check("translation/permutation", max(errs), tol)


def finite_difference_error(model, atoms: Atoms, h=1e-5, n_atoms=3, seed=0, tol=None) -> float:
    """Forces against central differences of the energy, absolute error in eV/Å."""
    rng = np.random.default_rng(seed)
    forces = evaluate(model, atoms, stress=False)[0]["forces"]
    worst = 0.0
    for i in rng.choice(len(atoms), size=min(n_atoms, len(atoms)), replace=False):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            ep, em = (r["energy"] for r in evaluate(model, [plus, minus], stress=False))
            worst = max(worst, abs(-(ep - em) / (2 * h) - forces[i, k]))
    return _check("finite-difference forces", worst, tol)


def stress_finite_difference_error(model, atoms: Atoms, h=1e-5, tol=None) -> float:
    """Stress against central differences of the energy under symmetric strain, in eV/Å^3."""
    stress = evaluate(model, atoms)[0]["stress"]
    volume = abs(np.linalg.det(atoms.cell.array))
    worst = 0.0
    for i in range(3):
        for j in range(i, 3):
            energies = []
            for sign in (1, -1):
                eps = np.zeros((3, 3))
                eps[i, j] += sign * h / 2
                eps[j, i] += sign * h / 2
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
                energies.append(evaluate(model, strained, stress=False)[0]["energy"])
            fd = (energies[0] - energies[1]) / (2 * h) / volume
            worst = max(worst, abs(fd - stress[i, j]))
    return _check("finite-difference stress", worst, tol)


def _direction(rng, along: np.ndarray, floor: float, symmetric=False) -> np.ndarray:
    """A unit direction half along ``along`` (the predicted forces or stress), half random.

    A purely random direction in 3N dimensions is nearly orthogonal to the forces (cos ~
    1/sqrt(3N)), so a wrong scale or sign would hide in the rounding; the part along the
    prediction sees those at full size, the random part every other error."""
    g = rng.normal(size=along.shape)
    if symmetric:
        g = g + g.T
    v = g / np.linalg.norm(g) + along / max(float(np.linalg.norm(along)), floor)
    return v / np.linalg.norm(v)


def _richardson(energy_pairs, h) -> float:
    """dE/dt from E(+-h) and E(+-h/2): central differences extrapolated to O(h^4), so the
    step can be large enough for float32's rounding without the O(h^2) truncation error."""
    (e_p, e_m), (ep2, em2) = energy_pairs
    return (4 * (ep2 - em2) / h - (e_p - e_m) / (2 * h)) / 3


def _energies(model, structures) -> list[tuple[float, float]]:
    energies = [float(r["energy"]) for r in evaluate(model, structures, stress=False)]
    return list(zip(energies[::2], energies[1::2]))


def directional_finite_difference_error(model, atoms: Atoms, h=1e-2, seed=0, tol=None) -> float:
    """Forces along one random unit direction v over all atoms: -dE/dt of E(x + t v) by
    differences (Richardson, steps h and h/2) against F.v, relative to |F| over all atoms.

    Four energies in one batch instead of six per atom, and a step that float32 resolves:
    the per-component check's 1e-5 Å is lost in float32's rounding. A sign error in the
    forces reads as ~1.4, a 10 % scale error as ~0.06 (v is half along F); the mixin's
    tolerances, measured, are 2e-2 in float32 and 2e-4 in float64."""
    forces = evaluate(model, atoms, stress=False)[0]["forces"]
    v = _direction(np.random.default_rng(seed), forces, 1e-3)
    moved = []
    for t in (h, -h, h / 2, -h / 2):
        a = atoms.copy()
        a.positions = atoms.positions + t * v
        moved.append(a)
    fd = -_richardson(_energies(model, moved), h)
    err = abs(fd - float(np.sum(forces * v))) / max(float(np.linalg.norm(forces)), 1e-3)
    return _check("directional finite-difference forces", err, tol)


def directional_stress_finite_difference_error(model, atoms: Atoms, h=5e-3, seed=0,
                                               tol=None) -> float:
    """Stress along one random symmetric unit strain e: dE/dt / V of E((1 + t e) cell) by
    differences (as above) against sigma:e, relative to |sigma| (Frobenius)."""
    stress = evaluate(model, atoms)[0]["stress"]
    e = _direction(np.random.default_rng(seed), stress, 1e-6, symmetric=True)
    volume = abs(np.linalg.det(atoms.cell.array))
    strained = []
    for t in (h, -h, h / 2, -h / 2):
        a = atoms.copy()
        a.set_cell(atoms.cell.array @ (np.eye(3) + t * e), scale_atoms=True)
        strained.append(a)
    fd = _richardson(_energies(model, strained), h) / volume
    err = abs(fd - float(np.sum(stress * e))) / max(float(np.linalg.norm(stress)), 1e-6)
    return _check("directional finite-difference stress", err, tol)


def extensivity_error(model, atoms: Atoms, tol=None) -> float:
    """A 2x2x2 supercell has 8 times the energy, tiled forces and the same stress. A charged
    cell's supercell carries 8 times its charge, and 8 times its unpaired electrons beyond
    those of the neutral cell's lowest multiplicity (the supercell's lowest has none)."""
    big = atoms.repeat((2, 2, 2))
    if "charge" in atoms.info:
        big.info["charge"] = 8 * atoms.info["charge"]
    if "spin" in atoms.info:
        lowest = lowest_multiplicity(int(atoms.numbers.sum()))
        big.info["spin"] = 8 * (atoms.info["spin"] - lowest) + 1
    a, b = evaluate(model, [atoms, big])
    errs = [
        _rel(b["energy"], 8 * a["energy"]),
        _rel(b["forces"], np.tile(a["forces"], (8, 1))),
        _rel(b["stress"], a["stress"]),
    ]
    return _check("supercell extensivity", max(errs), tol)


def locality_error(model, a: Atoms, b: Atoms, tol=None) -> float:
    """Two open structures far apart: the energy is the sum, forces are unchanged."""
    far = b.copy()
    offset = a.positions.mean(0) - b.positions.mean(0) + [4 * model.cutoff, 0, 0]
    far.positions = b.positions + offset
    both = a + far
    both.pbc = False
    # Separate calls: a batch would hide a model that mixes information across its atoms.
    ra, rb, rab = (evaluate(model, s, stress=False)[0] for s in (a, far, both))
    errs = [
        _rel(rab["energy"], ra["energy"] + rb["energy"]),
        _rel(rab["forces"], np.concatenate([ra["forces"], rb["forces"]])),
    ]
    return _check("locality", max(errs), tol)


def isolated_atom_error(model, tol=0.0) -> float:
    """Each element alone (and a far-apart pair) gets exactly E0 and zero force."""
    worst = 0.0
    for z in model.elements.tolist():
        for atoms in (Atoms([z], positions=[[0, 0, 0]]),
                      Atoms([z, z], positions=[[0, 0, 0], [0, 0, model.cutoff + 0.5]])):
            r = evaluate(model, atoms, stress=False)[0]
            e0 = float(model.e0[z])
            worst = max(worst, abs(float(r["energy"]) - len(atoms) * e0),
                        float(np.abs(r["forces"]).max()))
    return _check("isolated atoms", worst, tol)


def batch_consistency_error(model, structures: list[Atoms], tol=None) -> float:
    """Batched equals unbatched, for a batch that mixes periodic and open structures."""
    together = evaluate(model, structures)
    errs = []
    for atoms, t in zip(structures, together):
        alone = evaluate(model, atoms, stress=bool(atoms.pbc.any()))[0]
        for key in alone:
            errs.append(_rel(t[key], alone[key]))
    return _check("batched vs unbatched", max(errs), tol)


def gradient_leak_error(model, structures: list[Atoms], tol=0.0) -> float:
    """d E_a / d r_b is exactly zero for two different structures a != b of a batch."""
    graphs = [frame_to_graph(atoms_to_frame(a), model.cutoff, validate=False) for a in structures]
    batch = batch_graphs(graphs, common_keys=True)
    pos = batch[K.POSITIONS].to(model.dtype).detach().requires_grad_(True)
    batch = {**batch, K.POSITIONS: pos}
    out = model(batch, compute_forces=False)
    (grad,) = torch.autograd.grad(out[K.ENERGY][0], pos)
    others = batch[K.BATCH] != 0
    return _check("gradient leak", float(grad[others].abs().max()), tol)


def cutoff_continuity_error(model, z_pair=None, steps=(1e-3, 1e-5), tol=None) -> float:
    """Energy and force jumps as a neighbour crosses the cutoff shrink with the step size."""
    z1, z2 = z_pair or (model.elements.tolist()[0], model.elements.tolist()[-1])
    jumps = []
    for h in steps:
        pair = [Atoms([z1, z2], positions=[[0, 0, 0], [0, 0, model.cutoff + s]]) for s in (-h, h)]
        inside, outside = evaluate(model, pair, stress=False)
        jumps.append(max(abs(float(inside["energy"] - outside["energy"])),
                         float(np.abs(inside["forces"] - outside["forces"]).max())))
    return _check("cutoff continuity", jumps[-1], tol)

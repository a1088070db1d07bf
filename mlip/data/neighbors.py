"""Periodic radius graphs: vesin (default, CPU) and a brute-force torch reference (any device).

Both return a *full* list (i->j and j->i) with every periodic image inside the cutoff, even
when the cutoff exceeds the cell, as ``(edge_index (2, E), edge_shift (E, 3))`` with
``edge_index[0]`` the sender j, ``edge_index[1]`` the receiver i, and
``r_ij = r_j - r_i + edge_shift @ cell``. Edges come sorted by (receiver, sender, shift), so the
two implementations can be compared edge for edge.
"""

from __future__ import annotations

import math

import numpy as np
import torch

BACKENDS = ("vesin", "torch")


def neighbor_list(
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: np.ndarray,
    cutoff: float,
    backend: str = "vesin",
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour list of one structure as numpy arrays (edge_index int64, edge_shift float64)."""
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    if backend == "vesin":
        i, j, shift = _vesin(positions, cell, pbc, cutoff)
    elif backend == "torch":
        ei, sh = brute_force_neighbor_list(
            torch.from_numpy(positions), torch.from_numpy(cell), torch.from_numpy(pbc), cutoff
        )
        return ei.numpy(), sh.numpy()
    else:
        raise ValueError(f"unknown neighbour-list backend {backend!r}; choose one of {BACKENDS}")
    return _sorted(j, i, shift)


def _vesin(positions, cell, pbc, cutoff):
    from vesin import NeighborList

    if len(positions) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3))
    # vesin wants a box even for open directions; zero vectors there are fine.
    box = np.where(pbc[:, None], cell, cell * 0.0) if pbc.any() else np.zeros((3, 3))
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, shift = nl.compute(positions, box, pbc.tolist(), quantities="ijS")
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.float64)


def _sorted(sender, receiver, shift):
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], sender, receiver))
    edge_index = np.stack([sender[order], receiver[order]]).astype(np.int64)
    return edge_index, shift[order].astype(np.float64)


def complete_cell(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """Replace the vectors of open directions by orthonormal ones, so the cell is invertible.

    Shifts along open directions are always zero, so the substitute never moves an atom; it
    only lets slabs and wires with a zero vector along their open axis use fractional maths.
    """
    cell = cell.clone()
    ortho = []  # orthonormal basis of the span filled so far
    for k in [k for k in range(3) if pbc[k]]:
        v = cell[k].clone()
        for b in ortho:
            v = v - (v @ b) * b
        ortho.append(v / torch.linalg.norm(v))
    for k in range(3):
        if pbc[k]:
            continue
        for trial in torch.eye(3, dtype=cell.dtype, device=cell.device):
            v = trial.clone()
            for b in ortho:
                v = v - (v @ b) * b
            if float(torch.linalg.norm(v)) > 1e-3:
                cell[k] = v / torch.linalg.norm(v)
                ortho.append(cell[k].clone())
                break
    return cell


def image_range(cell: torch.Tensor, pbc: torch.Tensor, frac_span: torch.Tensor, cutoff: float):
    """Number of images needed along each lattice vector to see every neighbour."""
    n = [0, 0, 0]
    if bool(pbc.any()):
        inv = torch.linalg.inv(cell)
        for k in range(3):
            if pbc[k]:
                # Lattice planes of direction k are 1/|b_k| apart (b_k = k-th reciprocal vector).
                spacing = 1.0 / float(torch.linalg.norm(inv[:, k]))
                n[k] = math.ceil(cutoff / spacing + float(frac_span[k]))
    return n


@torch.no_grad()
def brute_force_neighbor_list(
    positions: torch.Tensor,
    cell: torch.Tensor,
    pbc: torch.Tensor,
    cutoff: float,
    chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """O(N^2 * images) reference on the input's device; memory is bounded by ``chunk`` images."""
    device, dtype = positions.device, positions.dtype
    n_atoms = positions.shape[0]
    pbc = pbc.to(torch.bool)
    if bool(pbc.any()):
        cell = complete_cell(cell, pbc)
        frac = positions @ torch.linalg.inv(cell)
        span = (frac.max(0).values - frac.min(0).values) if n_atoms else torch.zeros(3)
    else:
        span = torch.zeros(3, dtype=dtype, device=device)
    n = image_range(cell, pbc, span.cpu(), cutoff)
    ranges = [torch.arange(-k, k + 1, device=device, dtype=dtype) for k in n]
    shifts = torch.cartesian_prod(*ranges).reshape(-1, 3)
    senders, receivers, out_shifts = [], [], []
    diff = positions[None, :, :] - positions[:, None, :]  # [i, j] = r_j - r_i
    for s in torch.split(shifts, chunk):
        vec = diff[None] + (s @ cell)[:, None, None, :]
        close = (vec * vec).sum(-1) < cutoff * cutoff
        # An atom is not its own neighbour in the home cell.
        idx = torch.arange(n_atoms, device=device)
        for z in torch.nonzero((s == 0).all(-1)).flatten():
            close[z, idx, idx] = False
        si, ri, rj = torch.nonzero(close, as_tuple=True)
        senders.append(rj)
        receivers.append(ri)
        out_shifts.append(s[si])
    sender = torch.cat(senders).cpu().numpy()
    receiver = torch.cat(receivers).cpu().numpy()
    shift = torch.cat(out_shifts).cpu().numpy().astype(np.float64)
    ei, sh = _sorted(sender, receiver, shift)
    return torch.from_numpy(ei).to(device), torch.from_numpy(sh).to(device=device, dtype=dtype)

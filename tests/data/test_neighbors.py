"""vesin against the brute-force reference, edge for edge including shifts."""

import numpy as np
import pytest
import torch

from mlip.data.neighbors import brute_force_neighbor_list, neighbor_list


def _random_cell(rng, kind):
    if kind == "skewed":
        cell = np.eye(3) * rng.uniform(2.5, 5.0, 3)
        cell[1, 0] = rng.uniform(-3, 3)
        cell[2, :2] = rng.uniform(-3, 3, 2)
        return cell, np.ones(3, bool), rng.integers(1, 9)
    if kind == "tiny":  # one atom, cutoff three times the cell length
        cell = np.eye(3) * rng.uniform(1.0, 1.5) + rng.normal(scale=0.1, size=(3, 3))
        return cell, np.ones(3, bool), 1
    if kind == "mixed":
        cell = rng.normal(size=(3, 3)) + np.eye(3) * 4.0
        pbc = rng.random(3) < 0.5
        pbc[rng.integers(3)] = True
        pbc[(np.nonzero(pbc)[0][0] + 1) % 3] = False
        return cell, pbc, rng.integers(2, 8)
    if kind == "slab-zero-vector":
        cell = np.array([[3.0, 0, 0], [1.2, 2.8, 0], [0, 0, 0]])
        return cell, np.array([True, True, False]), rng.integers(2, 6)
    cell = np.zeros((3, 3))  # open boundaries, dummy cell
    return cell, np.zeros(3, bool), rng.integers(2, 12)


KINDS = ["skewed", "tiny", "mixed", "slab-zero-vector", "open"]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", KINDS)
def test_vesin_matches_brute_force(kind, seed):
    rng = np.random.default_rng(1000 * KINDS.index(kind) + seed)
    cell, pbc, n = _random_cell(rng, kind)
    box = cell if pbc.any() and kind != "slab-zero-vector" else np.eye(3) * 4.0
    pos = rng.random((n, 3)) @ box + rng.normal(scale=0.5, size=(n, 3))  # some outside the cell
    if kind == "slab-zero-vector":
        pos[:, 2] = rng.uniform(0, 3, n)
    cell_length = np.linalg.norm(cell, axis=1).max() or 4.0
    cutoff = 3.0 * cell_length if kind == "tiny" else rng.uniform(1.5, 6.0)
    a_index, a_shift = neighbor_list(pos, cell, pbc, cutoff, backend="vesin")
    b_index, b_shift = neighbor_list(pos, cell, pbc, cutoff, backend="torch")
    assert a_index.shape == b_index.shape and a_index.shape[1] > 0 or n == 1 and not pbc.any()
    np.testing.assert_array_equal(a_index, b_index)
    np.testing.assert_array_equal(a_shift, b_shift)
    # Every edge is inside the cutoff and shifts along open directions are zero.
    vec = pos[a_index[0]] - pos[a_index[1]] + a_shift @ cell
    assert (np.linalg.norm(vec, axis=1) < cutoff).all()
    assert (a_shift[:, ~pbc] == 0).all()


def test_tiny_cell_counts_every_image():
    # One atom in a simple cubic cell of side 1 with cutoff 3: count lattice points by hand.
    cell, cutoff = np.eye(3), 3.0
    index, shift = neighbor_list(np.zeros((1, 3)), cell, np.ones(3, bool), cutoff)
    grid = np.stack(np.meshgrid(*[np.arange(-3, 4)] * 3, indexing="ij"), -1).reshape(-1, 3)
    norms = np.linalg.norm(grid, axis=1)
    assert index.shape[1] == int(((norms < cutoff) & (norms > 0)).sum())


def test_full_list_is_symmetric():
    rng = np.random.default_rng(5)
    cell = np.array([[3.0, 0.0, 0.0], [1.5, 2.6, 0.0], [0.5, 0.5, 3.1]])
    pos = rng.random((5, 3)) @ cell
    index, shift = neighbor_list(pos, cell, np.ones(3, bool), 4.0)
    forward = {(j, i, *s) for (j, i), s in zip(index.T.tolist(), shift.astype(int).tolist())}
    backward = {(i, j, *(-np.array(s))) for (j, i, *s) in forward}
    assert forward == {tuple(int(v) for v in e) for e in backward}


def test_brute_force_runs_on_tensors_in_float32():
    pos = torch.rand(4, 3, dtype=torch.float32) * 3
    index, shift = brute_force_neighbor_list(pos, torch.eye(3) * 3, torch.ones(3, dtype=bool), 2.0)
    assert index.dtype == torch.long and shift.dtype == torch.float32 and index.shape[0] == 2


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown neighbour-list backend"):
        neighbor_list(np.zeros((1, 3)), np.eye(3), np.ones(3, bool), 1.0, backend="nope")

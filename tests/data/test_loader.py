"""Dataset, size-aware batching, splits and statistics."""

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.data import covalent_radii

from mlip.data import atoms_to_frame
from mlip.data import keys as K
from mlip.data.hdf5 import convert
from mlip.data.loader import (
    GraphDataset,
    SizeBatchSampler,
    compute_statistics,
    e0_from_isolated,
    file_groups,
    fit_e0,
    make_loader,
    split_indices,
)
from mlip.data.readers import read_frames
from tests.helpers import ACAC


@pytest.fixture(scope="module")
def acac_h5(tmp_path_factory):
    folder = tmp_path_factory.mktemp("h5")
    lines = (ACAC / "train_300K.xyz").read_text().splitlines(keepends=True)
    (folder / "acac100.xyz").write_text("".join(lines[: 100 * 17]))  # 100 frames keep it fast
    out = folder / "acac.h5"
    convert([str(folder / "acac100.xyz")], str(out))
    return out


def test_sampler_respects_atom_and_edge_limits():
    rng = np.random.default_rng(0)
    atoms, edges = rng.integers(5, 60, 200), rng.integers(50, 900, 200)
    s = SizeBatchSampler(atoms, max_atoms=150, num_edges=edges, max_edges=2000, seed=3)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert atoms[b].sum() <= 150 and edges[b].sum() <= 2000
    # Greedy packing: adding the next structure would have broken a limit.
    assert len(batches) <= len(list(SizeBatchSampler(atoms, 150, edges, 2000, max_graphs=2)))
    assert batches == list(SizeBatchSampler(atoms, 150, edges, 2000, seed=3))
    s.set_epoch(1)
    assert list(s) != batches and len(s) == len(list(s))


def test_oversized_structure_gets_its_own_batch():
    batches = list(SizeBatchSampler([10, 500, 10], max_atoms=100, shuffle=False))
    assert batches == [[0], [1], [2]]


def test_loader_batches_equal_direct_graphs_with_and_without_workers(acac_h5):
    ds = GraphDataset(acac_h5, cutoff=5.0)
    frames = list(read_frames(ACAC / "train_300K.xyz"))[:100]
    batches0 = list(make_loader(ds, max_atoms=100, max_edges=1500, seed=1))
    batches1 = list(make_loader(ds, max_atoms=100, max_edges=1500, seed=1, num_workers=1))
    assert len(batches0) == len(batches1) and sum(len(b[K.ENERGY]) for b in batches0) == 100
    for b0, b1 in zip(batches0, batches1):
        assert b0[K.POSITIONS].shape[0] <= 100 and b0[K.EDGE_INDEX].shape[1] <= 1500
        for key in b0:
            assert torch.equal(b0[key], b1[key]), key
    first = make_loader(ds, max_atoms=100, shuffle=False).__iter__().__next__()
    np.testing.assert_array_equal(first[K.FORCES][:15].numpy(), frames[0][K.FORCES])
    assert first[K.ENERGY][0].item() == frames[0][K.ENERGY]


def test_dataset_from_frames_and_mixed_tags():
    frames = [atoms_to_frame(bulk("Cu", cubic=True)), atoms_to_frame(bulk("Cu", cubic=True))]
    frames[1][K.TAGS] = np.ones(4, dtype=np.int64)
    ds = GraphDataset(iter(frames), cutoff=3.0)
    (batch,) = list(make_loader(ds, max_atoms=10, shuffle=False))
    assert batch[K.TAGS].tolist() == [0] * 4 + [1] * 4


def test_splits_are_seeded_disjoint_and_respect_groups():
    parts = split_indices(100, [0.8, 0.1, 0.1], seed=5)
    assert [len(p) for p in parts] == [80, 10, 10]
    assert sorted(np.concatenate(parts).tolist()) == list(range(100))
    assert all((a == b).all() for a, b in zip(parts, split_indices(100, [0.8, 0.1, 0.1], 5)))
    assert not all((a == b).all() for a, b in zip(parts, split_indices(100, [0.8, 0.1, 0.1], 6)))
    names = [f"f{i % 7}.xyz:{i}" for i in range(70)]
    groups = file_groups(names)
    train, test = split_indices(70, [0.7, 0.3], seed=0, groups=groups)
    assert not {groups[i] for i in train} & {groups[i] for i in test}
    assert len(train) + len(test) == 70 and len(test) in (20, 30)
    with pytest.raises(ValueError):
        split_indices(10, [0.5, 0.6])


def test_e0_fit_recovers_known_references():
    true = {1: -13.6, 6: -1027.0, 8: -2038.0}
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(30):
        z = rng.choice([1, 6, 8], size=rng.integers(2, 12))
        frames.append({K.ATOMIC_NUMBERS: z, K.ENERGY: sum(true[int(v)] for v in z)})
    fitted = fit_e0(frames)
    assert fitted.keys() == true.keys()
    for z in true:
        assert fitted[z] == pytest.approx(true[z], abs=1e-9)
    isolated = list(read_frames(ACAC / "isolated_atoms.xyz"))
    assert e0_from_isolated(isolated)[8] == -2037.796869412825


def test_statistics_neighbours_and_force_rms(acac_h5):
    frames = list(read_frames(ACAC / "train_300K.xyz"))[:50]
    isolated = list(read_frames(ACAC / "isolated_atoms.xyz"))
    stats = compute_statistics(frames, 4.0, e0="isolated", isolated=isolated)
    # Open molecules: count ordered pairs closer than the cutoff directly.
    edges = 0
    for f in frames:
        d = np.linalg.norm(f[K.POSITIONS][:, None] - f[K.POSITIONS][None], axis=-1)
        edges += int((d < 4.0).sum()) - len(d)
    assert stats.mean_num_neighbors == pytest.approx(edges / (50 * 15), rel=1e-12)
    forces = np.concatenate([f[K.FORCES] for f in frames])
    assert stats.force_rms == pytest.approx(np.sqrt(np.mean(forces**2)), rel=1e-12)
    assert stats.e0[6] == -1026.8538996116154 and stats.elements == [1, 6, 8]
    ratio, frame, za, zb, d = stats.closest_pair  # against all pairs, directly
    def ratio_of(f, a, b):
        r_cov = covalent_radii[f[K.ATOMIC_NUMBERS][a]] + covalent_radii[f[K.ATOMIC_NUMBERS][b]]
        return np.linalg.norm(f[K.POSITIONS][a] - f[K.POSITIONS][b]) / r_cov

    best = min((ratio_of(f, a, b), i, a, b)
               for i, f in enumerate(frames) for a in range(15) for b in range(15) if a != b)
    assert ratio == pytest.approx(best[0], rel=1e-12) and frame == best[1]
    assert {za, zb} == {frames[frame][K.ATOMIC_NUMBERS][best[2]],
                        frames[frame][K.ATOMIC_NUMBERS][best[3]]}
    assert 0.8 < ratio < 0.9
    assert d == pytest.approx(ratio * (covalent_radii[za] + covalent_radii[zb]))
    from_h5 = compute_statistics(GraphDataset(acac_h5, 4.0), 4.0, e0={1: 0.0})
    assert from_h5.n_frames == 100 and from_h5.e0 == {1: 0.0}

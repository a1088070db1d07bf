"""The Transformer: the physics contract (equivariance asserted inexact, and exact once frame
averaged), frame averaging (equivariance asserted), the direct force head, the
learning-equivariance pieces and their measurement."""

import json
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

import mlip
from mlip.data import keys as K
from mlip.data.graph import batch_graphs, from_ase
from mlip.models import equivariance_training as ET
from mlip.models.frame_averaging import FrameAveraged, _DegenerateSafeEigh, cube_group
from mlip.nn.attention import segment_attention
from mlip.testing import contract as C
from mlip.testing.equivariance import equivariance_error
from mlip.testing.mixin import TOLERANCES, PotentialContract
from mlip.testing.structures import contract_structures

ELEMENTS = [1, 6, 8]
SMALL = {"dim": 16, "num_heads": 2, "num_layers": 2, "edge_dim": 16, "readout_hidden": 16,
         "distance_basis": 4, "order_parameters": 2}


def small(name="transformer-s", dtype="float64", seed=0, **extra):
    torch.manual_seed(seed)
    model = mlip.build_model(name, cutoff=3.5, elements=ELEMENTS, dtype=dtype,
                             **{**SMALL, **extra}).eval()
    model.set_e0({z: -1.5 * z for z in ELEMENTS})
    return model


@pytest.fixture(scope="module")
def structures():
    return contract_structures(ELEMENTS)


@pytest.fixture(scope="module")
def raw():
    return small()


@pytest.fixture(scope="module")
def averaged(raw):
    return FrameAveraged(raw).eval()


class TestTransformer(PotentialContract):
    model_name = "transformer-s"
    hyperparameters = SMALL
    exact_equivariance = False  # learned: test_rotation asserts it inexact, frame-averaged exact


class TestFrameAveragedTransformer(PotentialContract):
    """Frame averaging makes equivariance exact: asserted at 1e-9 relative, in float64 only."""

    model_name = "frame-averaged"
    hyperparameters = {"model": "transformer-s", **SMALL}
    tolerances = {"float64": {**TOLERANCES["float64"], "equivariance": 1e-9}}

    @pytest.fixture(scope="class", params=["float64"])
    @classmethod
    def dtype(cls, request):
        return request.param

    # Global frames are not local: a supercell, or a far-away second molecule, changes the
    # frame of every atom. The error is the inner model's own orientation dependence, so it is
    # bounded by the inner model's rotation error on the same structure (docs/transformer.md).
    def test_extensivity(self, model, structures, dtype):
        err = C.extensivity_error(model, structures["triclinic"])
        assert 0 < err <= C.rotation_error(model.inner, structures["triclinic"])

    def test_locality(self, model, structures, dtype):
        err = C.locality_error(model, structures["molecule"], structures["molecule"][:3])
        assert 0 < err <= C.rotation_error(model.inner, structures["molecule"])


def test_raw_transformer_is_not_equivariant(raw, structures):
    for atoms in structures.values():
        assert C.rotation_error(raw, atoms) > 1e-4


def test_segment_attention_is_a_softmax_over_each_neighbourhood():
    # Against a per-atom loop: atom 3 has no neighbours (it attends to itself only), and logits
    # of +-500 would overflow exp() without the per-row shift.
    torch.manual_seed(0)
    receiver = torch.tensor([2, 0, 2, 2, 0, 1])
    n, e, heads, d = 4, 6, 2, 3
    q, k_self, v_self = (torch.randn(n, heads, d, dtype=torch.float64) for _ in range(3))
    k_edge, v_edge = (torch.randn(e, heads, d, dtype=torch.float64) for _ in range(2))
    self_bias = torch.randn(n, heads, dtype=torch.float64)
    edge_bias = torch.randn(e, heads, dtype=torch.float64)
    edge_bias[1:3] += torch.tensor([[500.0], [-500.0]], dtype=torch.float64)
    out = segment_attention(q, k_self, v_self, k_edge, v_edge, self_bias, edge_bias, receiver)
    for i in range(n):
        mine = (receiver == i).nonzero().flatten()
        keys = torch.cat([k_self[i : i + 1], k_edge[mine]])  # (1 + k, H, d)
        values = torch.cat([v_self[i : i + 1], v_edge[mine]])
        logits = (q[i] * keys).sum(-1) / d**0.5 + torch.cat([self_bias[i : i + 1],
                                                             edge_bias[mine]])
        weights = torch.softmax(logits, dim=0)  # over the neighbourhood, per head
        torch.testing.assert_close(out[i], (weights[..., None] * values).sum(0))
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[3], v_self[3])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_atom_without_neighbours_beside_crowded_ones(dtype):
    model = small(dtype=dtype)
    atoms = Atoms("CH4O", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, 0, 0],
                                     [9, 9, 9]])
    r = C.evaluate(model, atoms, stress=False)[0]
    assert np.isfinite(r["forces"]).all() and np.isfinite(r["node_energy"]).all()
    assert r["node_energy"][-1] == model.e0[8].item()
    assert np.abs(r["forces"][-1]).max() == 0.0


def test_direct_force_head(structures, tmp_path):
    model = small(direct_forces=True)
    assert model.conservative is False
    atoms = structures["molecule"]
    graph = from_ase(atoms, model.cutoff)
    out = model(graph)
    _, direct = model.atomic_output(graph, model.edge_vectors(graph, graph[K.POSITIONS],
                                                              graph[K.CELL]))
    assert torch.equal(out[K.FORCES], direct)
    # Not -dE/dr: the forces disagree with finite differences of the energy.
    assert C.finite_difference_error(model, atoms) > 1e-3
    # Trainable: a force loss reaches the head's parameters.
    out[K.FORCES].pow(2).sum().backward()
    assert model.force_head.net[0].weight.grad.abs().sum() > 0
    C.isolated_atom_error(model, tol=0.0)
    C.translation_permutation_error(model, atoms, tol=1e-10)
    path = tmp_path / "direct.pt"
    model.save(path)
    assert torch.load(path, weights_only=True)["conservative"] is False
    loaded = mlip.load_model(path)
    assert loaded.conservative is False
    with pytest.warns(UserWarning, match="non-conservative"):
        mlip.MLIPCalculator(loaded, device="cpu")
    # Frame averaging makes direct forces exactly equivariant too.
    C.rotation_error(FrameAveraged(model), atoms, reflect=True, tol=1e-10)


def test_conservative_by_default_and_presets():
    for name in ("transformer-s", "transformer-m"):
        model = mlip.build_model(name, elements=ELEMENTS)
        assert model.conservative is True and model.dtype == torch.float64
    assert mlip.build_model("transformer-s", elements=[1]).dim == 64
    assert mlip.build_model("transformer-m", elements=[1]).order is not None


# --- learning equivariance ------------------------------------------------------------------

def _batch(structures, with_targets=True):
    graphs = []
    rng = np.random.default_rng(3)
    for atoms in structures.values():
        g = from_ase(atoms, 3.5)
        if with_targets:
            g[K.FORCES] = torch.from_numpy(rng.normal(size=(len(atoms), 3)))
            s = rng.normal(size=(3, 3))
            g[K.STRESS] = torch.from_numpy(s + s.T)[None]
            g[K.ENERGY] = torch.tensor([1.0], dtype=torch.float64)
        graphs.append(g)
    return batch_graphs(graphs)


def test_random_rotations():
    g = torch.Generator().manual_seed(0)
    q = ET.random_rotations(64, g)
    assert torch.allclose(q @ q.transpose(1, 2), torch.eye(3, dtype=q.dtype).expand(64, 3, 3),
                          atol=1e-12)
    assert torch.allclose(torch.linalg.det(q), torch.ones(64, dtype=q.dtype))
    dets = torch.linalg.det(ET.random_rotations(64, g, reflect=True))
    assert (dets < 0).any() and (dets > 0).any()


def test_augmentation_matches_rotated_structures(structures):
    graph = _batch(structures)
    rotated, rots = ET.augment(graph, torch.Generator().manual_seed(1))
    assert not torch.allclose(rots[0], rots[1])  # each structure its own rotation
    for b in range(len(structures)):
        sel = graph[K.BATCH] == b
        q = rots[b]
        assert torch.allclose(rotated[K.POSITIONS][sel], graph[K.POSITIONS][sel] @ q.T)
        assert torch.allclose(rotated[K.CELL][b], graph[K.CELL][b] @ q.T)
        assert torch.allclose(rotated[K.FORCES][sel], graph[K.FORCES][sel] @ q.T)
        assert torch.allclose(rotated[K.STRESS][b], q @ graph[K.STRESS][b] @ q.T)
    # The neighbour list stays valid: every edge vector is the rotated one.
    model = small()
    before = model.edge_vectors(graph, graph[K.POSITIONS], graph[K.CELL])
    after = model.edge_vectors(rotated, rotated[K.POSITIONS], rotated[K.CELL])
    q_edge = rots[graph[K.BATCH][graph[K.EDGE_INDEX][1]]]
    assert torch.allclose(after, torch.einsum("ej,eij->ei", before, q_edge), atol=1e-12)


def test_transip_loss(raw, averaged, structures):
    graph = _batch(structures, with_targets=False)
    rots = ET.random_rotations(3, torch.Generator().manual_seed(2))
    phi = ET.EmbeddingTransform(raw.dim, hidden=32)
    # An exactly invariant embedding is predicted exactly by phi's initial identity.
    exact, _ = ET.transip_loss(averaged, phi, graph, rots)
    assert exact.item() < 1e-24
    loss, _ = ET.transip_loss(raw, phi, graph, rots)
    assert loss.item() > 1e-10  # 14 orders above the invariant one
    raw.zero_grad()
    loss.backward()
    assert raw.embedding.weight.grad.abs().sum() > 0
    assert phi.net[-1].weight.grad.abs().sum() > 0
    # phi learns how the embedding moves: a few steps on this batch lower the loss.
    opt = torch.optim.Adam(phi.parameters(), lr=3e-4)
    start = loss.item()
    for _ in range(30):
        opt.zero_grad()
        step, _ = ET.transip_loss(raw, phi, graph, rots, detach_target=True)
        step.backward()
        opt.step()
    assert step.item() < 0.5 * start
    raw.zero_grad()


def test_rotation_features():
    q = ET.random_rotations(5, torch.Generator().manual_seed(4))
    six = ET.rotation_features(q, "6d")
    assert torch.equal(six[:, :3], q[:, :, 0]) and torch.equal(six[:, 3:], q[:, :, 1])
    assert torch.equal(ET.rotation_features(q, "matrix"), q.reshape(5, 9))


def test_equivariance_regularizer(raw, averaged, structures):
    graph = _batch(structures, with_targets=False)
    gen = torch.Generator().manual_seed(5)
    exact, _ = ET.equivariance_regularizer(averaged, graph, generator=gen)
    assert exact.item() < 1e-24
    raw.train()
    try:
        penalty, _ = ET.equivariance_regularizer(raw, graph, generator=gen)
        assert penalty.item() > 1e-8
        raw.zero_grad()
        penalty.backward()  # through the forces: a double backward of the attention
        grads = [p.grad for p in raw.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    finally:
        raw.eval()
        raw.zero_grad()


# --- frame averaging: degenerate spectra and periodic systems ---------------------------------

def test_safe_eigh_gradient():
    a = torch.randn(3, 3, dtype=torch.float64)
    c = (a @ a.T).requires_grad_(True)
    w = torch.randn(3, 3, dtype=torch.float64)
    ref = torch.autograd.grad((torch.linalg.eigh(c)[1].abs() * w).sum(), c)[0]
    got = torch.autograd.grad((_DegenerateSafeEigh.apply(c, 1e-4)[1].abs() * w).sum(), c)[0]
    assert torch.allclose(got, ref, atol=1e-12)
    # Degenerate pair, gradient through the unique eigenvector only: finite.
    d = torch.diag(torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64)).requires_grad_(True)
    g = torch.autograd.grad(_DegenerateSafeEigh.apply(d, 1e-4)[1][:, 2].sum(), d)[0]
    assert torch.isfinite(g).all()


def test_linear_molecule_is_exact(averaged):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    co2 = Atoms("OCO", positions=np.outer([-1.16, 0.0, 1.16], axis) + [0.2, 0.1, 0.0])
    graph = from_ase(co2, averaged.cutoff)
    _, _, kinds = averaged.frames(graph[K.POSITIONS], graph[K.BATCH], 1)
    assert kinds == ["axial"]
    assert C.rotation_error(averaged.inner, co2) > 1e-4
    for seed in range(3):
        C.rotation_error(averaged, co2, seed=seed, reflect=bool(seed % 2), tol=1e-10)
    C.finite_difference_error(averaged, co2, tol=1e-6)


def test_cubic_cell_is_exact_under_the_cube_group(averaged):
    a = 3.6
    fcc = Atoms("C4", scaled_positions=[[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]],
                cell=np.eye(3) * a, pbc=True)
    fcc.positions += [0.05, 0.1, 0.15]  # not at the origin: the centroid still handles it
    graph = from_ase(fcc, averaged.cutoff)
    _, _, kinds = averaged.frames(graph[K.POSITIONS], graph[K.BATCH], 1)
    assert kinds == ["isotropic"]
    base = C.evaluate(averaged, fcc)[0]
    for q in cube_group(reflections=True).numpy()[::5]:
        moved = fcc.copy()
        moved.positions = fcc.positions @ q.T
        moved.cell = fcc.cell.array @ q.T
        r = C.evaluate(averaged, moved)[0]
        assert C._rel(r["energy"], base["energy"]) < 1e-12
        assert np.abs(r["forces"] - base["forces"] @ q.T).max() < 1e-10
    # A generic rotation is not covered by that guarantee: averaging over the cube group
    # shrinks the orientation dependence but does not remove it. Measured (seeds 0-3): 3.8e-6
    # to 9.2e-6 against the inner model's 1.5e-3 to 4.2e-3 (a ratio of 2.7e-3 at seed 0).
    err = C.rotation_error(averaged, fcc)
    assert 1e-10 < err < 0.02 * C.rotation_error(averaged.inner, fcc)


def test_periodic_rotation_exact_but_wrapping_not(raw, averaged, structures):
    crystal = structures["triclinic"]
    C.rotation_error(averaged, crystal, seed=7, tol=1e-10)
    rewrapped = crystal.copy()
    rewrapped.positions[0] += crystal.cell.array[1]  # the same crystal, one atom re-wrapped
    a, b = (C.evaluate(raw, s)[0]["energy"] for s in (crystal, rewrapped))
    assert C._rel(b, a) < 1e-12  # the inner model sees identical neighbourhoods
    a, b = (C.evaluate(averaged, s)[0]["energy"] for s in (crystal, rewrapped))
    assert abs(b - a) > 1e-8  # the PCA frame moved: documented, not claimed


# --- measuring equivariance -------------------------------------------------------------------

def test_equivariance_error(raw, averaged, structures, tmp_path):
    items = [structures["molecule"], structures["triclinic"]]
    plot = tmp_path / "orbit.png"
    rep_raw = equivariance_error(raw, items, n_rotations=6, seed=1, plot=plot)
    rep_fa = equivariance_error(averaged, items, n_rotations=6, seed=1, reflect=True)
    assert plot.stat().st_size > 1000
    assert len(rep_raw.structures) == 2 and len(rep_raw.structures[0].angles) == 7
    assert rep_raw.structures[0].angles[0] == 0.0 and rep_raw.structures[0].force_errors[0] == 0
    # Measured: raw force_relative mean 1.3e-2 (max 1.6e-2), energy spread 4.1e-3 eV;
    # frame-averaged 7.3e-15 and 7.1e-15 eV. The raw model is measurably but not wildly
    # orientation dependent: a relative error near 1 would mean the forces were not rotated
    # back (random directions), one below 3e-3 a nearly equivariant untrained model.
    assert 3e-3 < rep_raw.summary["force_relative_mean"] < 0.1
    assert rep_raw.summary["energy_spread_max"] > 1e-3
    assert rep_fa.summary["force_relative_max"] < 1e-12
    assert rep_fa.summary["energy_spread_max"] < 1e-12
    json.dumps(rep_raw.to_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same seed, same numbers
        again = equivariance_error(raw, items, n_rotations=6, seed=1)
    assert again.summary == rep_raw.summary

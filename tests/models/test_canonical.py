"""Learned canonicalization: the physics contract with exact equivariance asserted, symmetric
molecules and crystals through the calculator, continuity through degenerate configurations,
the frame report, the conditioning penalty in training, checkpoints and ``mlip check``."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

import mlip
from mlip.data.graph import batch_graphs, from_ase
from mlip.models.canonical import (
    FRAME_CONDITIONING,
    FRAME_PENALTY,
    FRAME_WEIGHT,
    Canonicalizer,
    fallback_share,
    frame_report,
)
from mlip.nn import CGTensorProduct, spherical_harmonics
from mlip.testing import contract as C
from mlip.testing.mixin import PotentialContract
from mlip.testing.structures import contract_structures, random_rotation
from tests.helpers import ACAC

SMALL = {
    "dim": 16,
    "num_heads": 2,
    "num_layers": 2,
    "edge_dim": 16,
    "readout_hidden": 16,
    "distance_basis": 4,
    "order_parameters": 2,
}
CANONICAL = {**SMALL, "symmetry": "canonical"}
ELEMENTS = [1, 6, 8, 29]


def small(seed=0, dtype="float64", **extra):
    torch.manual_seed(seed)
    model = mlip.build_model(
        "transformer-s", cutoff=4.0, elements=ELEMENTS, dtype=dtype, **{**CANONICAL, **extra}
    ).eval()
    model.set_e0({z: -1.5 * z for z in ELEMENTS})
    return model


@pytest.fixture(scope="module")
def model():
    return small()


@pytest.fixture(scope="module")
def plain():
    torch.manual_seed(0)
    return mlip.build_model("transformer-s", cutoff=4.0, elements=ELEMENTS, **SMALL).eval()


class TestCanonicalTransformer(PotentialContract):
    """Exact equivariance asserted at the contract's tolerances (1e-10 float64, 1e-4 float32),
    and, unlike frame averaging, locality and extensivity too: the frames are per atom."""

    model_name = "transformer-s"
    hyperparameters = CANONICAL


def _symmetric():
    fcc = bulk("Cu", "fcc", a=3.61, cubic=True)
    rattled = fcc.copy()
    rattled.rattle(0.05, seed=1)
    ethanol = molecule("CH3CH2OH")  # Cs: a mirror plane
    generic = ethanol.copy()
    generic.rattle(0.05, seed=2)
    return {
        "CO2": molecule("CO2"),
        "CH4": molecule("CH4"),
        "benzene": molecule("C6H6"),
        "ethanol": ethanol,
        "rattled ethanol": generic,
        "fcc": fcc,
        "fcc primitive": bulk("Cu", "fcc", a=3.61),
        "rattled fcc": rattled,
        "triclinic": contract_structures([1, 6, 8])["triclinic"],
    }


def _calc_results(model, atoms):
    atoms = atoms.copy()
    atoms.calc = mlip.MLIPCalculator(model, device="cpu")
    out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if atoms.pbc.all():
        out["stress"] = atoms.get_stress(voigt=False)
    return out


@pytest.mark.parametrize("name", list(_symmetric()))
def test_symmetric_inputs_exact_through_the_calculator(model, name):
    atoms = _symmetric()[name]
    layer = model.layers[0]
    rows = []
    hook = layer.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    try:
        ref = _calc_results(model, atoms)
    finally:
        hook.remove()
    # One pass of the backbone over the structure's own atoms (the second is the lone-atom
    # reference of the base class, one row per element), not one per frame.
    assert rows == [len(atoms), len(ELEMENTS)]
    assert all(np.isfinite(v).all() for v in ref.values())
    rng = np.random.default_rng(5)
    for reflect in (False, True):
        for _ in range(3):
            q = random_rotation(rng, reflect=reflect)
            moved = atoms.copy()
            moved.positions = atoms.positions @ q.T
            moved.cell = atoms.cell.array @ q.T
            got = _calc_results(model, moved)
            assert C._rel(got["energy"], ref["energy"], floor=1.0) < 1e-9
            assert C._rel(got["forces"], ref["forces"] @ q.T) < 1e-9
            if "stress" in ref:
                assert C._rel(got["stress"], q @ ref["stress"] @ q.T) < 1e-9


def test_frame_report_names_the_degenerate_atoms(model):
    cases = _symmetric()
    fcc = model(from_ase(cases["fcc"], model.cutoff))
    assert torch.all(fcc[FRAME_WEIGHT] == 0) and torch.all(fcc[FRAME_CONDITIONING] < 1e-12)
    # CO2: no axis at the centre of inversion (C), one on the axis (O).
    co2 = model(from_ase(cases["CO2"], model.cutoff))[FRAME_WEIGHT]
    assert co2.tolist() == [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]  # C, O, O
    assert fallback_share(co2) == 1.0 and fallback_share(co2, 0) == pytest.approx(1 / 3)
    # A generic molecule (the contract's): weights in [0, 1], never growing along the axes.
    mol = contract_structures([1, 6, 8])["molecule"]
    out = model(from_ase(mol, model.cutoff))
    weight = out[FRAME_WEIGHT]
    assert weight.shape == (len(mol), 3) and FRAME_PENALTY not in out  # penalty 0
    assert torch.all((weight >= 0) & (weight <= 1)) and torch.all(weight.diff(dim=1) <= 0)
    rows = frame_report(model, [cases["fcc"], mol])
    assert rows[0]["fallback_share"] == 1.0 and rows[0]["n_atoms"] == 4
    assert rows[1]["conditioning_min"] == pytest.approx(float(out[FRAME_CONDITIONING].min()))
    with pytest.raises(ValueError, match="no canonicalizer"):
        frame_report(mlip.build_model("transformer-s", elements=[1]), [mol])


def test_frames_are_orthonormal_and_follow_the_input():
    torch.manual_seed(1)
    can = Canonicalizer(4.0, 3, threshold=(1e-3, 2e-3)).double()
    vectors = torch.randn(64, 3, 3, dtype=torch.float64) * 0.05
    frame, rho, _, gates = can.frames(vectors)
    used = gates[:, -1] == 1
    assert used.sum() > 32  # most random triples are well conditioned
    gram = frame.transpose(1, 2) @ frame
    assert torch.allclose(
        gram[used], torch.eye(3, dtype=torch.float64).expand(int(used.sum()), 3, 3)
    )
    # O(3): a reflection of the vectors reflects the frame (det -1 allowed).
    q = torch.tensor(random_rotation(np.random.default_rng(0), reflect=True))
    frame_q, rho_q, _, _ = can.frames(q @ vectors)
    assert torch.allclose(frame_q, q @ frame, atol=1e-12) and torch.allclose(rho_q, rho)
    # Residual norms are Gram-Schmidt's: their product is |det V|.
    assert torch.allclose(rho[used].prod(-1), torch.linalg.det(vectors[used]).abs())


def test_cartesian_moments_are_mlips_spherical_harmonics_and_cg_paths():
    """FrameVectors' rhat, rhat rhat^T and Q v (Q traceless) are the l <= 2 harmonics and the
    (2, 1 -> 1) tensor product path of mlip.nn, in Cartesian form; with the trace, Q v adds
    the (0, 1 -> 1) path."""
    torch.manual_seed(0)
    vec = torch.randn(64, 5, 3, dtype=torch.float64)  # 64 neighbourhoods of 5 neighbours
    unit = vec / vec.norm(dim=-1, keepdim=True)
    sh = spherical_harmonics(2, vec)  # (64, 5, 9)
    assert torch.allclose(sh[..., 1:4], unit * math.sqrt(3 / (4 * math.pi)), atol=1e-14)
    a, b = torch.randn(2, 64, 5, 1, dtype=torch.float64)  # per-neighbour radial weights
    q = torch.einsum("njx,njy->nxy", a * unit, unit)
    v = (b * unit).sum(1)
    cg = CGTensorProduct(2, 2, 1, paths="even")
    x1, x2 = (a * sh).sum(1)[..., None], (b * sh).sum(1)[..., None]
    paths = []
    for path in ((0, 1, 1), (2, 1, 1)):
        onehot = torch.zeros(cg.num_paths, 1, dtype=torch.float64)
        onehot[cg.paths.index(path)] = 1.0
        paths.append(cg(x1, x2, onehot)[:, 1:4, 0].reshape(-1))
    basis = torch.stack(paths, -1)
    for target, columns in (
        (q, [0, 1]),
        (q - torch.eye(3) * q.diagonal(0, 1, 2).sum(-1)[:, None, None] / 3, [1]),
    ):
        target = torch.einsum("nxy,ny->nx", target, v).reshape(-1, 1)
        coef = torch.linalg.lstsq(basis[:, columns], target).solution
        assert torch.allclose(basis[:, columns] @ coef, target, atol=1e-12)
    # and fails without the path it needs
    coef = torch.linalg.lstsq(basis[:, :1], target).solution
    assert not torch.allclose(basis[:, :1] @ coef, target, atol=1e-3)


def test_so3_frames_are_exact_for_rotations_only():
    model = small(canonical={"group": "SO3"})
    atoms = contract_structures([1, 6, 8])["molecule"]
    assert C.rotation_error(model, atoms) < 1e-10
    assert C.rotation_error(model, atoms, reflect=True) > 1e-6


def _scan(model, structures):
    results = C.evaluate(model, structures, stress=False)
    energy = np.array([float(r["energy"]) for r in results])
    forces = np.stack([r["forces"] for r in results])
    shares, weights = [], []
    if getattr(model, "canonicalizer", None) is not None:
        batch = batch_graphs([from_ase(a, model.cutoff) for a in structures])
        with torch.no_grad():
            weight = model(batch, compute_forces=False)[FRAME_WEIGHT]
        for w in weight.split([len(a) for a in structures]):
            shares.append([fallback_share(w, k) for k in range(3)])
            weights.append(w.mean(0).tolist())
    return energy, forces, np.array(shares), np.array(weights)


def _co2_path(t):
    """O-C-O bent by moving the Os perpendicular to the axis by t (Å): linear at t = 0."""
    return [
        Atoms("OCO", positions=[[-1.16, s, 0.0], [0.0, -0.3 * s, 0.0], [1.16, s, 0.0]]) for s in t
    ]


def _fcc_path(t):
    """A rattled fcc cell scaled back to the perfect one (t = 0) and beyond."""
    base = bulk("Cu", "fcc", a=3.61, cubic=True)
    shift = np.random.default_rng(3).normal(scale=0.06, size=(len(base), 3))
    out = []
    for s in t:
        a = base.copy()
        a.positions = base.positions + s * shift
        out.append(a)
    return out


def _max_step(values):
    return float(np.abs(np.diff(values, axis=0)).max())


# (path, its range, points, the axis whose weight it switches, thresholds it crosses on
# either side of the degenerate point t = 0 over a range the grids below resolve: a jump of a
# frame or of its weight would show between neighbours). A planar OCO never has a third
# axis; near a perfect crystal rho_k grows like t^k (docs/transformer.md), so the fcc path
# switches the first axis.
PATHS = {
    "CO2 bent-linear": (_co2_path, 0.4, 81, 1, (1e-4, 1e-3)),
    "fcc rattled": (_fcc_path, 1.0, 41, 0, (1e-4, 5e-4)),
}


@pytest.mark.parametrize("name", list(PATHS))
def test_continuous_through_degenerate_configurations(name, plain):
    path, extent, points, axis, threshold = PATHS[name]
    model = small(canonical={"threshold": threshold})
    # The steps shrink with the step size (no jump): a coarse grid, and a 4x finer one over
    # the middle quarter, both through t = 0.
    coarse = np.linspace(-extent, extent, points)
    fine = coarse / 4
    e_c, f_c, share, weight = _scan(model, path(coarse))
    e_f, f_f, _, _ = _scan(model, path(fine))
    assert share[points // 2, axis] == 1.0  # the axis is undefined for every atom at t = 0
    assert weight[0, axis] > 0.3 and weight[-1, axis] > 0.3  # and used at the ends
    # The fallback is one interval about t = 0: its share never falls towards t = 0 nor rises
    # away from it (no flicker), and it is narrow. Measured: all atoms fall back on 13 of 81
    # points (CO2, 1/3 elsewhere: the C at the centre) and 5 of 41 (fcc, 0 at the ends).
    along = share[:, axis]
    assert np.all(np.diff(along[: points // 2 + 1]) >= 0)
    assert np.all(np.diff(along[points // 2 :]) <= 0)
    assert np.mean(along == 1.0) < 1 / 3
    for coarse_v, fine_v in ((e_c, e_f), (f_c, f_f)):
        assert _max_step(fine_v) < 0.5 * _max_step(coarse_v)
    # At the degenerate point itself: the second difference over +-1e-8 Å (curvature gives
    # ~1e-16) is float noise, no larger than that of the same path without canonicalization
    # (a jump J would give ~J).
    tiny = np.array([-1e-8, 0.0, 1e-8])
    e, f, _, _ = _scan(model, path(tiny))
    e0, f0, _, _ = _scan(plain, path(tiny))
    noise_e = max(abs(e0[0] - 2 * e0[1] + e0[2]), 1e-14 * abs(e0).max())
    noise_f = max(np.abs(f0[0] - 2 * f0[1] + f0[2]).max(), 1e-14 * np.abs(f0).max())
    # Measured, canonical / plain: energy 0 / 3.2e-16 eV, forces 9.7e-17 / 1.9e-16 eV/Å (CO2);
    # energy 0 / 1.1e-16, forces 5.0e-18 / 6.1e-18 (fcc).
    assert abs(e[0] - 2 * e[1] + e[2]) < 10 * noise_e
    assert np.abs(f[0] - 2 * f[1] + f[2]).max() < 10 * noise_f


def test_conditioning_penalty_has_finite_gradients_on_degenerate_input():
    model = small(canonical={"penalty": 1.0}).train()
    for atoms in (bulk("Cu", "fcc", a=3.61, cubic=True), molecule("CO2"), molecule("CH4")):
        model.zero_grad()
        pred = model(from_ase(atoms, model.cutoff), compute_forces=True)
        losses = model.auxiliary_losses(pred)
        assert set(losses) == {"frame"} and 0 < float(losses["frame"].detach()) <= 1.0
        (pred["forces"].square().sum() + losses["frame"]).backward()  # a double backward
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    assert small().auxiliary_losses(pred) == {}  # penalty 0: nothing added


def test_options_are_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="symmetry"):
        mlip.build_model("transformer-s", elements=[1], symmetry="frames")
    with pytest.raises(ValueError, match="symmetry"):
        mlip.build_model("transformer-s", elements=[1], canonical={"group": "SO3"})
    with pytest.raises(ValueError, match="group"):
        mlip.build_model(
            "transformer-s", elements=[1], symmetry="canonical", canonical={"group": "SO2"}
        )
    with pytest.raises(ValueError, match="threshold"):
        mlip.build_model(
            "transformer-s",
            elements=[1],
            symmetry="canonical",
            canonical={"threshold": (0.1, 0.01)},
        )
    model = small(canonical={"group": "SO3", "threshold": (0.001, 0.005), "penalty": 0.3})
    model.save(tmp_path / "m.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["hyperparameters"]["canonical"] == {
        "group": "SO3",
        "channels": 8,
        "num_basis": 8,
        "hidden": 32,
        "threshold": [0.001, 0.005],
        "penalty": 0.3,
    }
    loaded = mlip.load_model(tmp_path / "m.pt")
    atoms = _symmetric()["rattled ethanol"]
    a, b = (m(from_ase(atoms, 4.0)) for m in (model, loaded))
    for key in ("energy", "forces", FRAME_WEIGHT, FRAME_CONDITIONING):
        assert torch.equal(a[key], b[key])


def test_mlip_check_reports_the_fallback(model, tmp_path, capsys):
    import ase.io

    from mlip.cli import main

    model.save(tmp_path / "m.pt")
    cases = _symmetric()
    # (not the perfect fcc cell: its forces vanish, and a relative error of zero is ill-posed)
    ase.io.write(tmp_path / "s.xyz", [cases["rattled ethanol"], cases["rattled fcc"]])
    argv = [
        "check",
        str(tmp_path / "m.pt"),
        str(tmp_path / "s.xyz"),
        "--n-rotations",
        "3",
        "--reflect",
        "--max-force-relative",
        "1e-9",
        "--json",
        str(tmp_path / "r.json"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fallback" in out and "100.0%" in out  # the crystal row
    summary = json.loads(out.strip().splitlines()[-1])
    assert 4 / 13 <= summary["fallback_share"] <= 1.0
    full = json.loads((tmp_path / "r.json").read_text())
    assert full["structures"][1]["fallback_share"] == 1.0


def test_the_trainer_adds_the_conditioning_penalty(tmp_path):
    import ase.io

    from mlip.train import train

    data = tmp_path / "acac.xyz"
    source = ACAC / "train_300K.xyz"
    ase.io.write(data, ase.io.read(source, index=":8"), format="extxyz")
    losses = []
    for penalty in (0.0, 1e4):
        config = {
            "model": {
                "name": "transformer-s",
                "hyperparameters": {**CANONICAL, "canonical": {"penalty": penalty}},
            },
            "data": {"train": str(data), "valid_fraction": 0.25, "max_atoms": 60},
            "run": {
                "epochs": 1,
                "dtype": "float64",
                "run_dir": str(tmp_path / f"run{penalty}"),
                "tensorboard": False,
            },
        }
        train(config)
        with open(tmp_path / f"run{penalty}" / "metrics.csv") as f:
            losses.append(float(list(csv.DictReader(f))[0]["train_loss"]))
    # The penalty (<= its weight per step) is in the loss the optimizer saw.
    assert losses[1] > losses[0] + 100

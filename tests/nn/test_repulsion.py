"""ZBL repulsion: the textbook value, a smooth switch-off below bonded distances, checkpoints."""

import math

import pytest
import torch
from ase.io import read

import mlip
from mlip.data.graph import from_ase
from mlip.models.registry import checkpoint_dict, model_from_checkpoint
from mlip.nn.repulsion import DEFAULT_SWITCH, ZBLRepulsion
from tests.helpers import ACAC


def test_zbl_matches_hand_computed_value():
    # Two H atoms 0.3 Å apart: a = 0.4685 / (2 * 1**0.23) Å; per-atom share is half the pair.
    zbl = ZBLRepulsion()
    r = torch.tensor([0.3, 0.3], dtype=torch.float64)
    out = zbl(torch.tensor([1, 1]), torch.tensor([[1, 0], [0, 1]]), r)
    x = 0.3 / (0.4685 / 2)
    phi = (0.18175 * math.exp(-3.1998 * x) + 0.50986 * math.exp(-0.94229 * x)
           + 0.28022 * math.exp(-0.4029 * x) + 0.02817 * math.exp(-0.20162 * x))
    u = 0.3 / (DEFAULT_SWITCH * 2 * 0.31)  # envelope argument: covalent radius of H is 0.31 Å
    env = 1 - 28 * u**6 + 48 * u**7 - 21 * u**8
    expected = 14.399645478425668 / 0.3 * phi * env / 2
    torch.testing.assert_close(out, torch.tensor([expected, expected], dtype=torch.float64))


def test_zbl_is_repulsive_and_vanishes_smoothly():
    zbl = ZBLRepulsion()
    r = torch.linspace(0.2, 3.0, 300, dtype=torch.float64, requires_grad=True)
    n = len(r)
    z = torch.full((2 * n,), 29)
    edges = torch.stack([torch.arange(n) + n, torch.arange(n)])
    e = zbl(z, edges, r)[:n]
    (de,) = torch.autograd.grad(e.sum(), r)
    cut = DEFAULT_SWITCH * 2 * 1.32  # Cu covalent radii
    inside = r.detach() < cut
    assert (e[inside] > 0).all() and (de[inside] <= 0).all()
    assert (e[~inside] == 0).all() and de[~inside].abs().max() == 0


def test_zbl_is_exactly_zero_on_bonded_molecules():
    # Every frame of acac at 300 K: compressed bonds reach 0.82 of the covalent sum. A wall
    # switched off at the sum itself put 2.5 eV/Å RMS of force into these frames.
    zbl = ZBLRepulsion()
    for atoms in read(ACAC / "train_300K.xyz", "::10"):
        g = from_ase(atoms, 5.0)
        s, r = g["edge_index"]
        length = (g["positions"][s] - g["positions"][r]).norm(dim=1)
        assert zbl(g["atomic_numbers"], g["edge_index"], length).abs().max() == 0
    legacy = ZBLRepulsion(switch=1.0)
    assert legacy(g["atomic_numbers"], g["edge_index"], length).sum() > 0.1  # eV


def test_pair_repulsion_values_and_checkpoints():
    model = mlip.build_model("nequip-like", elements=[1, 6], channels=4, num_layers=1,
                             pair_repulsion=True)
    assert model.repulsion.switch == DEFAULT_SWITCH
    assert model.hyperparameters["pair_repulsion"] == DEFAULT_SWITCH  # saved resolved
    custom = mlip.build_model("nequip-like", elements=[1], channels=4, pair_repulsion=0.5)
    assert custom.repulsion.switch == 0.5
    assert mlip.build_model("nequip-like", elements=[1], channels=4).repulsion is None
    with pytest.raises(ValueError, match="pair_repulsion"):
        mlip.build_model("nequip-like", elements=[1], channels=4, pair_repulsion=2.0)
    # Format 1 saved `true` for the switch at the covalent sum; it must load as it trained.
    ckpt = checkpoint_dict(model)
    ckpt["format_version"], ckpt["hyperparameters"]["pair_repulsion"] = 1, True
    assert model_from_checkpoint(ckpt).repulsion.switch == 1.0
    assert model_from_checkpoint(checkpoint_dict(model)).repulsion.switch == DEFAULT_SWITCH

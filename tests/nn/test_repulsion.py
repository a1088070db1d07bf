"""ZBL repulsion: the textbook value, a smooth switch-off, and a wall in MD."""

import math

import torch

from mlip.nn.repulsion import ZBLRepulsion


def test_zbl_matches_hand_computed_value():
    # Two H atoms 0.3 Å apart: a = 0.4685 / (2 * 1**0.23) Å; per-atom share is half the pair.
    zbl = ZBLRepulsion()
    r = torch.tensor([0.3, 0.3], dtype=torch.float64)
    out = zbl(torch.tensor([1, 1]), torch.tensor([[1, 0], [0, 1]]), r)
    x = 0.3 / (0.4685 / 2)
    phi = (0.18175 * math.exp(-3.1998 * x) + 0.50986 * math.exp(-0.94229 * x)
           + 0.28022 * math.exp(-0.4029 * x) + 0.02817 * math.exp(-0.20162 * x))
    u = 0.3 / (2 * 0.31)  # envelope argument: covalent radius of H is 0.31 Å
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
    cut = 2 * 1.32  # Cu covalent radii
    inside = r.detach() < cut
    assert (e[inside] > 0).all() and (de[inside] <= 0).all()
    assert (e[~inside] == 0).all() and de[~inside].abs().max() == 0

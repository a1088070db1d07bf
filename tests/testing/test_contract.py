"""The contract checks catch the faults they exist for: each is shown failing on a broken model."""

import pytest
import torch
from ase import Atoms
from torch import nn

from mlip.data import keys as K
from mlip.models.base import Potential
from mlip.nn.radial import BesselBasis
from mlip.testing import contract as C
from mlip.testing.mixin import TOLERANCES
from mlip.testing.structures import contract_structures

ELEMENTS = [1, 6, 8]


class PairModel(Potential):
    """A smooth pair potential; switches turn on one fault each."""

    def __init__(self, fault=None, cutoff=3.5):
        super().__init__(cutoff, ELEMENTS, "float64")
        self.fault = fault
        self.basis = BesselBasis(cutoff, 6)
        self.emb = nn.Embedding(len(ELEMENTS), 6).double()

    def atomic_output(self, graph, edge_vec):
        sender, receiver = graph[K.EDGE_INDEX]
        d = edge_vec.norm(dim=-1)
        weights = self.basis(d)
        if self.fault == "hard-cutoff":
            weights = weights + 0.3 * (d < self.cutoff).to(d.dtype)[:, None]
        if self.fault == "not-rotation-invariant":
            weights = weights * (1 + 0.2 * edge_vec[:, :1])
        e = (weights * self.emb(self.species(graph))[sender]).sum(-1)
        n = graph[K.ATOMIC_NUMBERS].shape[0]
        out = torch.zeros(n, dtype=d.dtype).index_add(0, receiver, e)
        if self.fault == "global-mixing":  # every atom sees the batch mean: not local
            out = out + out.mean()
        if self.fault == "detached-forces":
            out = out.detach() + 0.0 * d.sum()
        return torch.tanh(out)


@pytest.fixture(scope="module")
def structures():
    return contract_structures(ELEMENTS)


def test_good_model_passes_everything(structures):
    model = PairModel()
    crystal, molecule = structures["triclinic"], structures["molecule"]
    assert C.rotation_error(model, crystal, reflect=True) < 1e-12
    assert C.finite_difference_error(model, molecule) < 1e-7
    assert C.stress_finite_difference_error(model, crystal) < 1e-7
    assert C.extensivity_error(model, crystal) < 1e-12
    assert C.locality_error(model, molecule, molecule[:3]) < 1e-12
    assert C.isolated_atom_error(model) == 0.0
    assert C.batch_consistency_error(model, list(structures.values())) < 1e-12
    assert C.gradient_leak_error(model, list(structures.values())) == 0.0
    assert C.cutoff_continuity_error(model) < 1e-6


def test_rotation_check_catches_a_non_invariant_model(structures):
    with pytest.raises(AssertionError, match="rotation"):
        C.rotation_error(PairModel("not-rotation-invariant"), structures["molecule"], tol=1e-6)


def test_continuity_check_catches_a_hard_cutoff():
    with pytest.raises(AssertionError, match="cutoff continuity"):
        C.cutoff_continuity_error(PairModel("hard-cutoff"), tol=1e-6)


def test_locality_and_batch_checks_catch_global_mixing(structures):
    model = PairModel("global-mixing")
    with pytest.raises(AssertionError, match="locality"):
        C.locality_error(model, structures["molecule"], structures["molecule"][:3], tol=1e-8)
    with pytest.raises(AssertionError):
        C.batch_consistency_error(model, list(structures.values()), tol=1e-8)


def test_gradient_leak_check_catches_cross_talk(structures):
    with pytest.raises(AssertionError, match="gradient leak"):
        C.gradient_leak_error(PairModel("global-mixing"), list(structures.values()), tol=0.0)


def test_finite_difference_check_catches_wrong_forces(structures):
    with pytest.raises(AssertionError, match="finite-difference forces"):
        C.finite_difference_error(PairModel("detached-forces"), structures["molecule"], tol=1e-6)


def test_isolated_atom_gets_exact_e0():
    model = PairModel()
    model.set_e0({1: -13.6, 6: -1029.5, 8: -2041.3})
    assert C.isolated_atom_error(model) == 0.0
    r = C.evaluate(model, Atoms("O", positions=[[0, 0, 0]]), stress=False)[0]
    assert float(r["energy"]) == -2041.3 and not r["forces"].any()


class Rescaled(nn.Module):
    """A real model whose forces or stress are multiplied by a factor: the energy stays right,
    so only a check that compares the derivatives with the energy can see it."""

    def __init__(self, inner, forces=1.0, stress=1.0):
        super().__init__()
        self.inner, self.forces, self.stress = inner, forces, stress

    cutoff = property(lambda self: self.inner.cutoff)

    def forward(self, graph, compute_forces=True, compute_stress=False):
        out = dict(self.inner(graph, compute_forces=compute_forces, compute_stress=compute_stress))
        out[K.FORCES] = self.forces * out[K.FORCES]
        if K.STRESS in out:
            out[K.STRESS] = self.stress * out[K.STRESS]
        return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_directional_checks_catch_wrong_forces_and_stress(structures, dtype):
    # The mixin's model and tolerances: the honest model passes, a sign flip or a 10 % scale
    # error of the forces or of the stress fails, along every direction tried.
    import mlip

    torch.manual_seed(0)
    model = mlip.build_model("equivariant", cutoff=3.5, elements=ELEMENTS, dtype=dtype,
                             lmax=2, channels=(8, 6, 4), num_layers=2).eval()
    model.set_e0({z: -1.5 * z for z in ELEMENTS})
    model.set_scale(1.7)
    tol_f, tol_s = (TOLERANCES[dtype][k] for k in ("fd_direction", "fd_stress_direction"))
    crystal = structures["triclinic"]
    C.directional_finite_difference_error(model, structures["molecule"], tol=tol_f)
    C.directional_stress_finite_difference_error(model, crystal, tol=tol_s)
    for seed in range(3):
        for factor in (-1.0, 1.1):
            with pytest.raises(AssertionError, match="finite-difference forces"):
                C.directional_finite_difference_error(
                    Rescaled(model, forces=factor), structures["molecule"], seed=seed, tol=tol_f)
            with pytest.raises(AssertionError, match="finite-difference stress"):
                C.directional_stress_finite_difference_error(
                    Rescaled(model, stress=factor), crystal, seed=seed, tol=tol_s)

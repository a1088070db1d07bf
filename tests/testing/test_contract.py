"""The contract checks catch the faults they exist for: each is shown failing on a broken model."""

import pytest
import torch
from ase import Atoms
from torch import nn

from mlip.data import keys as K
from mlip.models.base import Potential
from mlip.nn.radial import BesselBasis
from mlip.testing import contract as C
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

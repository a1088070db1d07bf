"""Charge and spin conditioning (mlip.nn.charge_spin): the contract on charged structures in
both families, the default-state policy, isolated ions, batching and the warnings."""

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import mlip
from mlip.data import keys as K
from mlip.data.graph import atoms_to_frame, batch_graphs, frame_to_graph
from mlip.testing import contract as C
from mlip.testing.mixin import TOLERANCES, PotentialContract
from mlip.testing.structures import with_charge_spin

ELEMENTS = [1, 6, 7, 8]
SMALL_EQ = {"lmax": 2, "channels": (8, 6, 4), "conv_channels": 6, "num_layers": 2,
            "radial_hidden": 8, "num_knots": 8, "readout_hidden": 8,
            "interaction": "gaunt-grid", "radial": "mlp", "self_connection": "gate"}
SMALL_TF = {"dim": 16, "num_heads": 2, "num_layers": 2, "edge_dim": 8, "readout_hidden": 8}


class TestChargedEquivariant(PotentialContract):
    model_name = "equivariant"
    hyperparameters = SMALL_EQ
    charge_spin = True


class TestChargedEquivariantEnvironment(PotentialContract):
    """Environment shares: the charge moves with the geometry, and carries forces."""

    model_name = "equivariant"
    hyperparameters = SMALL_EQ
    charge_spin = "environment"


class TestChargedFrameAveragedTransformer(PotentialContract):
    """The Transformer with conditioning, made exactly equivariant so that rotations assert
    (float64); global frames are not local, as in tests/models/test_transformer.py."""

    model_name = "frame-averaged"
    hyperparameters = {"model": "transformer", **SMALL_TF}
    charge_spin = True
    tolerances = {"float64": {**TOLERANCES["float64"], "equivariance": 1e-9}}

    @pytest.fixture(scope="class", params=["float64"])
    @classmethod
    def dtype(cls, request):
        return request.param

    def test_extensivity(self, model, structures, dtype):
        err = C.extensivity_error(model, structures["triclinic"])
        assert 0 < err <= C.rotation_error(model.inner, structures["triclinic"])

    def test_locality(self, model, dtype):
        pytest.skip("global frames are not local (tests/models/test_transformer.py)")


def _model(name, **hp):
    torch.manual_seed(0)
    hp = {"cutoff": 4.0, "elements": ELEMENTS, "dtype": "float64", **hp}
    model = mlip.build_model(name, **hp).eval()
    model.set_e0({1: -13.6, 6: -1029.0, 7: -1485.0, 8: -2041.0})
    return model


@pytest.fixture(scope="module", params=[("equivariant", True), ("transformer", True),
                                        ("transformer", "environment")])
def conditioned(request):
    name, shares = request.param
    model = _model(name, charge_spin=shares, **(SMALL_EQ if name == "equivariant" else SMALL_TF))
    if shares == "environment":
        with torch.no_grad():
            model.electronic.pair_logits.weight.normal_()
    return model


@pytest.fixture(scope="module")
def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    return atoms


def _energy(model, atoms):
    return float(C.evaluate(model, atoms, stress=False)[0]["energy"])


def test_states_have_different_energies(conditioned, ethanol):
    neutral = _energy(conditioned, with_charge_spin(ethanol, 0))
    states = [with_charge_spin(ethanol, +1), with_charge_spin(ethanol, -1),
              with_charge_spin(ethanol, 0, unpaired_extra=1)]
    for atoms in states:
        assert abs(_energy(conditioned, atoms) - neutral) > 1e-4


def test_default_state_is_the_plain_model(ethanol):
    """Neutral, lowest multiplicity (given or defaulted) = the same weights unconditioned."""
    plain = _model("equivariant", **SMALL_EQ)
    conditioned = _model("equivariant", charge_spin=True, **SMALL_EQ)
    state = plain.state_dict()
    state.update({k: v for k, v in conditioned.state_dict().items()
                  if k.startswith("electronic.")})
    conditioned.load_state_dict(state)
    ref = C.evaluate(plain, ethanol, stress=False)[0]
    for atoms in (with_charge_spin(ethanol, 0), ethanol):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = C.evaluate(conditioned, atoms, stress=False)[0]
        assert got["energy"] == pytest.approx(ref["energy"], abs=1e-10)
        np.testing.assert_allclose(got["forces"], ref["forces"], atol=1e-10)


def test_missing_values_default_and_warn_once(ethanol):
    model = _model("equivariant", charge_spin=True, **SMALL_EQ)
    with pytest.warns(UserWarning, match="lowest multiplicity"):
        e_missing = _energy(model, ethanol)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: the second call is silent
        e_again = _energy(model, ethanol)
        e_given = _energy(model, with_charge_spin(ethanol, 0))
    assert e_missing == e_again == pytest.approx(e_given, abs=1e-12)
    # A charge without a spin: the lowest multiplicity for that charge (a doublet cation).
    cation = ethanol.copy()
    cation.info["charge"] = 1
    assert _energy(model, cation) == pytest.approx(
        _energy(model, with_charge_spin(ethanol, 1)), abs=1e-12)


def test_plain_model_warns_once_about_a_charge(ethanol):
    plain = _model("equivariant", **SMALL_EQ)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _energy(plain, with_charge_spin(ethanol, 0))  # the default state: nothing to say
    with pytest.warns(UserWarning, match="without charge/spin conditioning"):
        _energy(plain, with_charge_spin(ethanol, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _energy(plain, with_charge_spin(ethanol, -1))


def test_isolated_atoms_and_ions(conditioned):
    """A lone neutral atom in its default state: exactly E0. A lone ion: E0 plus the model's
    charge-state term for that element and charge, and no force."""
    for z in ELEMENTS:
        atom = Atoms([z], positions=[[0, 0, 0]])
        e0 = float(conditioned.e0[z])
        assert _energy(conditioned, with_charge_spin(atom, 0)) == e0
        for charge in (+1, -1):
            if z - charge <= 0:  # a bare nucleus is refused
                continue
            r = C.evaluate(conditioned, with_charge_spin(atom, charge), stress=False)[0]
            assert float(r["energy"]) != e0
            assert np.abs(r["forces"]).max() == 0.0
    # The term depends on the element and its shares only: two far O- (charge -2, two unpaired
    # electrons, one share each) are twice one O-, and feel no force.
    pair = Atoms("OO", positions=[[0, 0, 0], [0, 0, conditioned.cutoff + 1.0]])
    one = Atoms("O", positions=[[0, 0, 0]])
    e_pair = C.evaluate(conditioned, with_charge_spin(pair, -2, unpaired_extra=1), stress=False)[0]
    e_one = _energy(conditioned, with_charge_spin(one, -1))
    assert float(e_pair["energy"]) == pytest.approx(2 * e_one, abs=1e-10)
    assert np.abs(e_pair["forces"]).max() == 0.0


def test_shares_sum_to_the_totals(ethanol):
    model = _model("transformer", charge_spin=True, **SMALL_TF)
    graphs = [frame_to_graph(atoms_to_frame(a), model.cutoff) for a in
              (with_charge_spin(ethanol, 1), with_charge_spin(ethanol, -1, unpaired_extra=1))]
    batch = batch_graphs(graphs)
    with torch.no_grad():
        model.electronic.logits.weight.normal_()
        shares = model.electronic.shares(batch, model.species(batch), torch.float64)
    totals = torch.zeros(2, 2, dtype=torch.float64).index_add(0, batch[K.BATCH], shares)
    # Ethanol has 26 electrons: the cation's doublet has one unpaired electron beyond the
    # neutral singlet, the anion's quartet three.
    np.testing.assert_allclose(totals.numpy(), [[1, 1], [-1, 3]], atol=1e-12)
    assert len(set(shares[:, 0].tolist())) > 1  # not uniform once the logits are trained


def test_batch_fills_missing_charge_per_structure(ethanol):
    """A batch that mixes charged and plain structures keeps the charges (the plain ones get
    the default state), instead of dropping the key for all."""
    cation = with_charge_spin(ethanol, 1)
    graphs = [frame_to_graph(atoms_to_frame(a), 4.0) for a in (cation, ethanol)]
    for common in (False, True):
        batch = batch_graphs(graphs, common_keys=common)
        assert batch[K.CHARGE].tolist() == [1.0, 0.0]
        assert batch[K.SPIN].tolist() == [2.0, 1.0]


def test_calculator_reads_info(conditioned, ethanol):
    calc = mlip.MLIPCalculator(conditioned)
    energies = []
    for charge in (0, 1):
        atoms = with_charge_spin(ethanol, charge)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    assert energies[0] != pytest.approx(energies[1], abs=1e-6)
    assert energies[1] == pytest.approx(_energy(conditioned, with_charge_spin(ethanol, 1)),
                                        abs=1e-10)


def test_checkpoint_roundtrip(conditioned, ethanol, tmp_path):
    path = tmp_path / "m.pt"
    conditioned.save(path)
    loaded = mlip.load_model(path)
    assert loaded.uses_charge_spin
    atoms = with_charge_spin(ethanol, -1)
    assert _energy(loaded, atoms) == _energy(conditioned, atoms)


def test_impossible_states_are_refused(conditioned, ethanol):
    from mlip.data.validate import StructureError

    cases = [({"charge": 0.5}, "integer"), ({"charge": 0, "spin": 0}, "integer >= 1"),
             ({"charge": 0, "spin": 2}, "impossible"), ({"charge": 30}, "leaves")]
    for info, match in cases:
        atoms = ethanol.copy()
        atoms.info.update(info, name="ethanol-bad")
        with pytest.raises(StructureError, match=match) as err:
            frame_to_graph(atoms_to_frame(atoms), conditioned.cutoff)
        assert "ethanol-bad" in str(err.value)

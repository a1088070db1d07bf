"""Every shipped model loads by name, has a complete card, and reproduces its recorded test
errors on its own test split (issue #21's mechanism; DESIGN §6)."""

import pytest

import mlip
from mlip.pretrained import (
    CARD_KEYS,
    format_card,
    model_card,
    pretrained_models,
    reproduce_test_errors,
)
from tests.helpers import REPO

NAMES = pretrained_models()


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(KeyError, match="no pretrained model 'nope'"):
        mlip.load_pretrained("nope")
    with pytest.raises(ValueError, match="not the name of a pretrained model"):
        mlip.load_model("nope")


@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete(name):
    card = model_card(name)
    assert [k for k in CARD_KEYS if not card.get(k)] == []
    model = mlip.load_pretrained(name)
    from ase.data import chemical_symbols

    assert card["elements"] == [chemical_symbols[z] for z in model.elements.tolist()]
    assert name in format_card(card)


@pytest.mark.parametrize("name", NAMES)
def test_names_work_where_paths_do(name, capsys):
    from mlip.cli import main

    assert main(["info", name]) == 0
    assert model_card(name)["summary"] in capsys.readouterr().out
    calc = mlip.MLIPCalculator(name)
    assert calc.model.uses_charge_spin == bool(model_card(name).get("charge_spin"))


@pytest.mark.parametrize("name", NAMES)
def test_recorded_test_errors_reproduce(name, monkeypatch):
    monkeypatch.chdir(REPO)  # the card's config and data paths are the checkout's
    recorded = model_card(name)["test"]["metrics"]
    got = reproduce_test_errors(name)
    assert got["n_structures"] == recorded["n_structures"]
    for key in ("energy_mae", "energy_rmse", "forces_mae", "forces_rmse", "stress_rmse"):
        if key in recorded:
            assert got[key] == pytest.approx(recorded[key], rel=1e-3), key
    for state, errors in recorded.get("per_state", {}).items():
        assert got["per_state"][state]["forces_rmse"] == pytest.approx(
            errors["forces_rmse"], rel=1e-3)

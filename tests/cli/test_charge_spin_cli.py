"""Impossible charge and spin states through the CLI: a clear line naming the structure, a
non-zero exit, no traceback (issue #21)."""

import pytest
from ase.build import molecule
from ase.io import write

import mlip
from mlip.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    for name, hp in (("cs", {"charge_spin": True}), ("plain", {})):
        mlip.build_model("nequip-like", elements=[1, 8], dtype="float64", channels=4,
                         num_layers=1, **hp).save(d / f"{name}.pt")
    return d


CASES = [
    ({"charge": 0.5}, "total charge must be an integer, got 0.5"),
    ({"charge": 0, "spin": 0}, "spin multiplicity must be an integer >= 1"),
    ({"charge": 1, "spin": 1}, "spin multiplicity 1 is impossible with 9 electrons"),
    ({"charge": 10}, "charge +10 leaves no electrons"),
]


@pytest.mark.parametrize("info,message", CASES)
def test_impossible_states(models, tmp_path, capsys, info, message):
    water = molecule("H2O")
    water.info.update(info)
    path = tmp_path / "water.xyz"
    write(path, water)
    rc = main(["predict", str(models / "cs.pt"), str(path), "-o", str(tmp_path / "out.xyz")])
    err = capsys.readouterr().err
    assert rc != 0 and message in err and "water.xyz:0" in err
    assert "Traceback" not in err


def test_charge_option_on_a_plain_model(models, tmp_path, capsys):
    path = tmp_path / "water.xyz"
    write(path, molecule("H2O"))
    for verb in (["predict", "-o", str(tmp_path / "o.xyz")],
                 ["md", "--steps", "1", "--log", str(tmp_path / "md.log")],
                 ["relax", "-o", str(tmp_path / "r.xyz")]):
        rc = main([verb[0], str(models / "plain.pt"), str(path), *verb[1:], "--charge", "1"])
        err = capsys.readouterr().err
        assert rc != 0 and "without charge/spin conditioning" in err, verb
        assert "Traceback" not in err


def test_charge_option_reaches_the_model(models, tmp_path):
    path = tmp_path / "water.xyz"
    write(path, molecule("H2O"))
    from ase.io import read

    energies = []
    for charge in ("0", "1"):
        out = tmp_path / f"out{charge}.xyz"
        assert main(["predict", str(models / "cs.pt"), str(path), "--charge", charge,
                     "-o", str(out)]) == 0
        atoms = read(out)
        assert atoms.info["charge"] == int(charge)
        energies.append(atoms.get_potential_energy())
    assert energies[0] != energies[1]


def test_boundary_checks(models, tmp_path, capsys):
    """Impossible numbers are refused at the command line, naming the option (issue #26)."""
    path = tmp_path / "water.xyz"
    write(path, molecule("H2O"))
    model = str(models / "plain.pt")
    for argv, message in [
        (["md", model, str(path), "--temperature", "-5"], "--temperature: must be >= 0 K"),
        (["md", model, str(path), "--timestep", "0"], "--timestep: must be > 0 fs"),
        (["md", model, str(path), "--steps", "-1"], "--steps: must be >= 0"),
        (["relax", model, str(path), "--fmax", "nan"], "--fmax: expected a finite number"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert main(["eval", model, str(path)]) == 1  # no reference values: nothing to compare
    assert "no reference energy, forces or stress" in capsys.readouterr().err

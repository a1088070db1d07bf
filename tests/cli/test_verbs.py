"""Each verb end to end through ``main(argv)`` on tiny acac data and a tiny model."""

import csv
import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest
import yaml
from ase.build import bulk

import mlip
from mlip.cli import main
from tests.helpers import tiny_config, tiny_cu_model, write_acac


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained by `mlip train` (2 epochs, --set overrides)."""
    root = tmp_path_factory.mktemp("cli")
    data = write_acac(root / "train.xyz", 12)
    test = write_acac(root / "test.xyz", 4, source="test_MD_300K.xyz")
    config = tiny_config(data, root / "run")
    config["data"]["test"] = str(test)
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(root / "config.yaml"), "--set", "run.epochs=2"]) == 0
    return root


def test_train_writes_the_run_and_resumes_as_finished(trained, capsys):
    run = trained / "run"
    assert {"best.pt", "last.pt", "config.yaml", "metrics.csv", "test_metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    assert yaml.safe_load((run / "config.yaml").read_text())["run"]["epochs"] == 2
    assert (
        main(["train", str(trained / "config.yaml"), "--set", "run.epochs=2", "--resume", str(run)])
        == 0
    )
    assert (
        json.loads(capsys.readouterr().out.strip().splitlines()[-1])["status"] == "already finished"
    )


def test_train_errors_are_one_line(trained, capsys):
    assert main(["train", str(trained / "config.yaml"), "--set", "optim.lrr=1"]) == 1
    err = capsys.readouterr().err
    assert "optim.lrr" in err and "Traceback" not in err


def test_info(trained, capsys):
    assert main(["info", str(trained / "run" / "best.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["elements"] == ["H", "C", "O"] and info["conservative"] is True
    with open(trained / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    best = min(rows, key=lambda row: float(row["valid_loss"]))
    assert info["training"]["epoch"] == int(best["epoch"])  # best.pt is the best epoch's
    assert set(info["e0_eV"]) == {"H", "C", "O"}
    assert main(["info", str(trained / "config.yaml")]) == 1
    assert "is not an mlip checkpoint" in capsys.readouterr().err


def test_info_reads_checkpoints_without_torch_as_torch_does(trained, monkeypatch):
    from mlip.cli import info

    for name in ("best.pt", "last.pt"):  # last.pt holds the optimizer state as well
        path = trained / "run" / name
        assert info.peek(path) is not None
        fast = info.checkpoint_info(path)
        monkeypatch.setattr(info, "peek", lambda path: None)
        assert json.dumps(fast, default=str) == json.dumps(info.checkpoint_info(path), default=str)
        monkeypatch.undo()
    code = (
        "import sys; from mlip.cli import main\n"
        f"assert main(['info', {str(trained / 'run' / 'last.pt')!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'mlip info imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "elements      H C O" in proc.stdout


def test_eval_json_and_plots(trained, tmp_path, capsys):
    model = str(trained / "run" / "best.pt")
    assert (
        main(
            ["eval", model, str(trained / "test.xyz"), "--json", "--plots", str(tmp_path / "plots")]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_structures"] == 4 and metrics["forces_mae"] > 0
    assert set(metrics["per_element"]) == {"H", "C", "O"}
    assert (tmp_path / "plots" / "parity_forces.png").stat().st_size > 1000
    # frame averaging leaves an equivariant model's predictions as they are
    assert (
        main(
            [
                "eval",
                model,
                str(trained / "test.xyz"),
                "--json",
                "--frame-average",
                "--dtype",
                "float64",
            ]
        )
        == 0
    )
    averaged = json.loads(capsys.readouterr().out)
    assert averaged["forces_mae"] == pytest.approx(metrics["forces_mae"], rel=1e-5)
    assert averaged["energy_mae"] == pytest.approx(metrics["energy_mae"], rel=1e-5, abs=1e-7)


def test_predict_skips_and_names_a_bad_structure(trained, tmp_path, capsys):
    frames = ase.io.read(trained / "test.xyz", index=":")
    bad = frames[1].copy()
    bad.numbers[0] = 79  # gold: the model does not know it
    ase.io.write(tmp_path / "mixed.xyz", [frames[0], bad, frames[2]], format="extxyz")
    out = tmp_path / "pred.extxyz"
    model = str(trained / "run" / "best.pt")
    assert main(["predict", model, str(tmp_path / "mixed.xyz"), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["structures"] == 2
    assert "mixed.xyz:1" in captured.err
    got = ase.io.read(out, index=":")
    ref = mlip.predict_batched(model, [frames[0]])[0]
    # extxyz stores 8 decimals
    assert np.allclose(got[0].get_forces(), ref["forces"], rtol=0, atol=1e-8)
    assert main(["predict", model, str(tmp_path / "mixed.xyz"), "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert not list(tmp_path.glob(".pred*"))  # no temporary file left behind


def test_md_nvt_and_nve_log_and_trajectory(trained, tmp_path, capsys):
    model = str(trained / "run" / "best.pt")
    start = str(trained / "test.xyz")
    for ensemble in ("nvt", "nve"):
        traj, logfile = tmp_path / f"{ensemble}.traj", tmp_path / f"{ensemble}.log"
        assert (
            main(
                [
                    "md",
                    model,
                    start,
                    "--ensemble",
                    ensemble,
                    "--steps",
                    "10",
                    "--interval",
                    "5",
                    "--timestep",
                    "0.5",
                    "--trajectory",
                    str(traj),
                    "--log",
                    str(logfile),
                ]
            )
            == 0
        )
        assert len(ase.io.read(traj, index=":")) == 3
        lines = logfile.read_text().splitlines()
        assert "T[K]" in lines[0] and len(lines) == 4
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["steps"] == 10
    assert main(["md", model, start, "--ensemble", "npt", "--steps", "2"]) == 1
    assert "periodic" in capsys.readouterr().err


def test_md_npt_and_relax_cell_on_a_crystal(tmp_path, capsys):
    tiny_cu_model(tmp_path / "cu.pt")
    ase.io.write(tmp_path / "cu.xyz", bulk("Cu", "fcc", a=3.7, cubic=True), format="extxyz")
    assert (
        main(
            [
                "md",
                str(tmp_path / "cu.pt"),
                str(tmp_path / "cu.xyz"),
                "--ensemble",
                "npt",
                "--steps",
                "3",
                "--timestep",
                "1",
            ]
        )
        == 0
    )
    out = tmp_path / "relaxed.extxyz"
    assert (
        main(
            [
                "relax",
                str(tmp_path / "cu.pt"),
                str(tmp_path / "cu.xyz"),
                "--cell",
                "--optimizer",
                "bfgs",
                "--steps",
                "3",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["steps"] <= 3 and out.exists()
    assert ase.io.read(out).get_potential_energy() == pytest.approx(summary["energy"])


def test_relax_a_molecule(trained, tmp_path, capsys):
    out = tmp_path / "relaxed.extxyz"
    assert (
        main(
            [
                "relax",
                str(trained / "run" / "best.pt"),
                str(trained / "test.xyz"),
                "--fmax",
                "0.01",
                "--steps",
                "20",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    before = ase.io.read(trained / "test.xyz")
    assert ase.io.read(out).get_potential_energy() <= summary["energy"] + 1e-9
    assert (
        summary["energy"]
        < mlip.predict_batched(str(trained / "run" / "best.pt"), [before])[0]["energy"]
    )


def test_every_verb_has_help(capsys):
    for verb in ("train", "predict", "eval", "md", "relax", "info"):
        with pytest.raises(SystemExit) as exit_:
            main([verb, "--help"])
        assert exit_.value.code == 0
        assert len(capsys.readouterr().out) > 300

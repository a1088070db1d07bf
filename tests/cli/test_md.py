"""``mlip md`` end to end: the watchdog's exit status, a killed run continued, a quiet CPU run,
and --charge/--spin refused for a model without charge/spin conditioning."""

import json
import signal
import subprocess
import sys
import time

import ase.io
import numpy as np
import pytest
import torch
from ase.build import molecule

import mlip
from mlip.cli import main
from mlip.md_watch import read_log


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("md")
    torch.manual_seed(0)
    model = mlip.build_model(
        "equivariant", elements=[1, 6, 8], lmax=1, channels=4, num_layers=1, dtype="float64"
    )
    model.save(root / "model.pt")
    model.set_scale(-30.0)  # the wrong sign, and strong: it heats CH3OH up in a few steps
    model.save(root / "hot.pt")
    ase.io.write(root / "mol.xyz", molecule("CH3OH"), format="extxyz")
    return root


def test_an_unstable_model_is_stopped_with_exit_status_3(files, tmp_path, capsys):
    traj, log = tmp_path / "hot.traj", tmp_path / "hot.log"
    rc = main(
        [
            "md",
            str(files / "hot.pt"),
            str(files / "mol.xyz"),
            "--steps",
            "200",
            "--interval",
            "2",
            "--trajectory",
            str(traj),
            "--log",
            str(log),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 3
    summary = json.loads(out.splitlines()[-1])
    assert summary["status"] == "stopped" and summary["stop_reason"] == "temperature"
    assert f"stopped at step {summary['stopped_at_step']}" in err and "--max-temperature" in err
    assert "Traceback" not in err
    frames = ase.io.read(traj, index=":")
    assert frames[-1].info["md_step"] == summary["stopped_at_step"]
    assert len(read_log(log)["time"]) == len(frames)
    # each limit is an option: with every check off the same run goes on to the end
    off = ["--max-temperature", "none", "--min-distance", "none", "--max-drift", "none"]
    rc = main(["md", str(files / "hot.pt"), str(files / "mol.xyz"), "--steps", "4", *off,
               "--no-fragment-check"])  # fmt: skip
    assert rc == 0 and json.loads(capsys.readouterr().out)["status"] == "completed"


def test_a_killed_run_is_readable_and_continues(files, tmp_path, capsys):
    traj, log = tmp_path / "md.traj", tmp_path / "md.log"
    args = [
        str(files / "model.pt"),
        str(files / "mol.xyz"),
        "--interval",
        "2",
        "--trajectory",
        str(traj),
        "--log",
        str(log),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlip", "md", *args, "--steps", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if log.exists() and len(log.read_text().splitlines()) >= 4:  # header + 3 lines
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Warning" not in err, err  # a default CPU run says nothing on stderr
    frames = ase.io.read(traj, index=":")
    done = frames[-1].info["md_step"]
    assert len(frames) >= 3 and done == 2 * (len(frames) - 1)
    assert len(read_log(log)["time"]) >= len(frames)  # the log may be one line ahead
    assert (
        main(
            [
                "md",
                str(files / "model.pt"),
                "--restart",
                "--steps",
                str(done + 4),
                "--interval",
                "2",
                "--trajectory",
                str(traj),
                "--log",
                str(log),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 4 and summary["total_steps"] == done + 4
    steps = [a.info["md_step"] for a in ase.io.read(traj, index=":")]
    assert steps == list(range(0, done + 6, 2))
    times = read_log(log)["time"]
    assert np.all(np.diff(times) > 0) and times[-1] == pytest.approx((done + 4) * 0.5e-3)


def test_a_default_cpu_predict_says_nothing_on_stderr(files, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlip",
            "predict",
            str(files / "model.pt"),
            str(files / "mol.xyz"),
            "-o",
            str(tmp_path / "p.xyz"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]


@pytest.mark.parametrize("verb", ["md", "relax", "predict"])
def test_charge_and_spin_are_refused_for_a_model_without_them(files, tmp_path, capsys, verb):
    extra = ["-o", str(tmp_path / "out.xyz")] if verb == "predict" else ["--steps", "1"]
    assert (
        main([verb, str(files / "model.pt"), str(files / "mol.xyz"), "--charge", "1", *extra]) == 1
    )
    err = capsys.readouterr().err
    assert (
        f"model {files / 'model.pt'} was trained without charge/spin conditioning; "
        "--charge has no effect" in err
    )
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# the model is told it is conditioned but is not: it says so, which is not what is tested here
@pytest.mark.filterwarnings("ignore:this .* was built without charge/spin conditioning")
def test_charge_and_spin_reach_structures_that_lack_them(files, tmp_path, monkeypatch):
    import argparse

    from mlip.cli._options import calculator_and_structure
    from mlip.predict import predict_files

    model = mlip.load_model(files / "model.pt")
    # what a conditioned model says (a property of the class): the values must arrive
    monkeypatch.setattr(type(model), "uses_charge_spin", True)
    charged = molecule("CH3OH")
    charged.info.update(charge=-1.0, spin=2.0)
    ase.io.write(tmp_path / "two.xyz", [molecule("CH3OH"), charged], format="extxyz")
    predict_files(model, [tmp_path / "two.xyz"], tmp_path / "out.xyz", charge=1, spin=2)
    got = ase.io.read(tmp_path / "out.xyz", index=":")
    assert [(a.info["charge"], a.info["spin"]) for a in got] == [(1.0, 2.0), (-1.0, 2.0)]
    water = molecule("H2O")
    water.info["spin"] = 3.0
    ase.io.write(tmp_path / "water.xyz", water, format="extxyz")
    args = argparse.Namespace(model=str(files / "model.pt"), device="cpu", dtype=None,
                              structure=str(tmp_path / "water.xyz"), index=0, charge=0.0, spin=1.0)
    _, atoms = calculator_and_structure(args)  # what md and relax read
    assert (atoms.info["charge"], atoms.info["spin"]) == (0.0, 3.0)

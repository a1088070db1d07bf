"""``mlip check``: parsed by its own add_parser, run on a saved model and an extxyz file."""

import argparse
import json

import ase.io
import pytest
import torch

import mlip
from mlip.cli import check
from mlip.testing.structures import contract_structures

SMALL = {"dim": 16, "num_heads": 2, "num_layers": 1, "edge_dim": 16, "readout_hidden": 16,
         "distance_basis": 4}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("check")
    torch.manual_seed(0)
    model = mlip.build_model("transformer-s", cutoff=3.5, elements=[1, 6, 8], **SMALL)
    model.save(root / "model.pt")
    structures = contract_structures([1, 6, 8])
    ase.io.write(root / "structures.xyz", [structures["molecule"], structures["triclinic"]])
    return root


def parse(argv):
    parser = argparse.ArgumentParser(prog="mlip")
    check.add_parser(parser.add_subparsers(dest="verb"))
    return parser.parse_args(["check", *argv])


def test_check_reports_the_raw_model(files, capsys):
    report, plot = files / "raw.json", files / "raw.png"
    args = parse([str(files / "model.pt"), str(files / "structures.xyz"), "--n-rotations", "4",
                  "--json", str(report), "--plot", str(plot)])
    assert check.run(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["force_relative_mean"] > 1e-4 and summary["frame_average"] is False
    full = json.loads(report.read_text())
    assert [s["n_atoms"] for s in full["structures"]] == [5, 6]
    assert full["summary"] == {k: summary[k] for k in full["summary"]}
    assert plot.stat().st_size > 1000


def test_check_threshold_fails_the_raw_model_and_passes_frame_averaging(files, capsys):
    argv = [str(files / "model.pt"), str(files / "structures.xyz"), "--n-rotations", "3",
            "--max-force-relative", "1e-9"]
    assert check.run(parse(argv)) == 1
    assert check.run(parse([*argv, "--frame-average", "--reflect"])) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["frame_average"] is True and summary["force_relative_max"] < 1e-9


def test_check_refuses_an_empty_selection(files):
    args = parse([str(files / "model.pt"), str(files / "structures.xyz"), "--max-structures",
                  "0"])
    with pytest.raises(ValueError, match="no structures"):
        check.run(args)

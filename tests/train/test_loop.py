"""The loop on tiny acac data: loss goes down, checkpoints load, an interrupted run resumes
exactly, fine-tuning handles new elements as configured."""

import csv
import random

import ase.io
import pytest
import torch
import yaml

import mlip
from mlip.train import ConfigError, train
from tests.helpers import TINY_MODEL, kill_and_resume, tiny_config


def _weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt["train_state"]["raw_weights"], ckpt["state_dict"]


def test_training_reduces_loss_and_writes_the_run(acac, tmp_path):
    config = tiny_config(acac, tmp_path / "run", run={"epochs": 5})
    result = train(config)
    assert result.status == "finished" and result.epochs == 5
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    assert float(rows[-1]["valid_loss"]) < 0.95 * float(rows[0]["valid_loss"])
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["run"]["epochs"] == 5 and saved["optim"]["schedule"] == "cosine"
    model = mlip.load_model(tmp_path / "run" / "best.pt")
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    # E0, scale and the neighbour count were fitted from the data and stored
    assert ckpt["hyperparameters"]["avg_num_neighbors"] > 5
    assert ckpt["hyperparameters"]["elements"] == [1, 6, 8]
    assert float(model.scale) == pytest.approx(ckpt["training"]["data"]["force_rms"])
    assert ckpt["training"]["data"]["e0_method"] == "fit"


def test_kill_and_resume_equals_an_uninterrupted_run(acac, tmp_path):
    sections = {"run": {"epochs": 3, "checkpoint_every": 2}, "data": {"max_atoms": 45}}
    train(tiny_config(acac, tmp_path / "whole", **sections))
    total = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["train_state"]
    kill_at = random.Random(0).randrange(3, total["global_step"] - 1)
    result = kill_and_resume(tiny_config(acac, tmp_path / "cut", **sections), kill_at)
    assert result.steps == total["global_step"]
    raw_a, ema_a = _weights(tmp_path / "whole" / "last.pt")
    raw_b, ema_b = _weights(tmp_path / "cut" / "last.pt")
    for key in raw_a:
        torch.testing.assert_close(raw_b[key], raw_a[key], rtol=0, atol=1e-12)
        torch.testing.assert_close(ema_b[key], ema_a[key], rtol=0, atol=1e-12)
    with open(tmp_path / "cut" / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]


def test_time_limit_stops_cleanly_and_resume_refuses_a_changed_config(acac, tmp_path):
    config = tiny_config(acac, tmp_path / "run", run={"epochs": 50})
    result = train(config, max_time=1e-6)
    assert result.status == "time limit" and result.steps == 1
    assert (tmp_path / "run" / "last.pt").exists()
    with pytest.raises(ConfigError, match="optim.lr"):
        train(tiny_config(acac, tmp_path / "run", run={"epochs": 50}, optim={"lr": 0.5}))


def test_finetune_adds_elements_only_when_asked(acac, tmp_path):
    train(tiny_config(acac, tmp_path / "base", run={"epochs": 1}))
    base = tmp_path / "base" / "best.pt"
    frames = ase.io.read(acac, index=":8")
    for atoms in frames:  # one H becomes N: a new element
        atoms.numbers[-1] = 7
    new = tmp_path / "with_n.xyz"
    ase.io.write(new, frames, format="extxyz")
    ft = {"model": {"name": None, "hyperparameters": {}}}
    with pytest.raises(ConfigError, match=r"elements \[7\]"):
        train({**tiny_config(new, tmp_path / "ft1", finetune={"checkpoint": str(base)}), **ft})
    config = tiny_config(new, tmp_path / "ft2", run={"epochs": 1},
                         finetune={"checkpoint": str(base), "new_elements": "add"})
    train({**config, **ft})
    old, grown = mlip.load_model(base), mlip.load_model(tmp_path / "ft2" / "best.pt")
    assert grown.elements.tolist() == [1, 6, 7, 8]
    assert float(grown.e0[6]) == float(old.e0[6])  # e0: keep
    assert float(grown.e0[7]) != 0.0  # fitted for the new element
    assert grown.hyperparameters["message_norm"] == "component"
    # A checkpoint from before format 3 keeps the message scale it was trained with, also when
    # fine-tuning grows it.
    legacy = torch.load(base, weights_only=True)
    legacy["format_version"] = 2
    del legacy["hyperparameters"]["message_norm"]
    torch.save(legacy, tmp_path / "legacy.pt")
    config = tiny_config(new, tmp_path / "ft3", run={"epochs": 1},
                         finetune={"checkpoint": str(tmp_path / "legacy.pt"),
                                   "new_elements": "add"})
    train({**config, **ft})
    grown = mlip.load_model(tmp_path / "ft3" / "best.pt")
    assert grown.hyperparameters["message_norm"] == "integral"
    assert grown.layers[0].interaction.gain == 1.0


@pytest.mark.parametrize("switch, warns", [(1.0, True), (True, False)])
def test_training_says_when_the_pair_repulsion_acts_on_the_data(acac, tmp_path, caplog,
                                                                switch, warns):
    # acac's compressed bonds reach 0.82 of the covalent radii sum: a wall switched off at
    # the sum acts on them, the default (0.7) does not.
    model = {**TINY_MODEL, "hyperparameters": {**TINY_MODEL["hyperparameters"],
                                               "pair_repulsion": switch}}
    config = tiny_config(acac, tmp_path / "run", model=model, run={"epochs": 1})
    with caplog.at_level("WARNING", logger="mlip.train"):
        train(config)
    said = [r.getMessage() for r in caplog.records if "pair repulsion" in r.getMessage()]
    assert bool(said) == warns
    if warns:
        assert "training frame" in said[0] and "covalent radii sum" in said[0]

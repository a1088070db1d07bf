"""run.fit_to_time: a time-limited run shortened to the epochs that fit, its cosine schedule
annealed inside the budget, the fit kept by a resume. The loop's clock is replaced by one that
advances exactly one second per epoch of training steps, so the numbers are exact."""

import csv
import importlib

import pytest
import torch

from mlip.train import ConfigError, StopTraining, train

from ._tiny import tiny_config


class FakeClock:
    """One second per epoch of steps, nothing for anything else (validation included)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def step(self, trainer):
        self.now += 1.0 / trainer.steps_per_epoch


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    # mlip.train is also the name of the train function, so import the module by its path.
    monkeypatch.setattr(importlib.import_module("mlip.train.loop"), "_clock", fake)
    return fake


def _config(acac, run_dir):
    # The torch kernels: under TRITON_INTERPRET=1 "auto" would pick the slow interpreter.
    return tiny_config(acac, run_dir, run={"epochs": 50, "fit_to_time": True, "kernels": "torch"},
                       optim={"lr": 0.05, "min_lr_ratio": 0.01, "warmup_steps": 2})


def test_the_run_fits_the_budget_and_anneals(acac, tmp_path, clock):
    # After epoch 2: 8.5 s left at 1 s per epoch, 3% kept back -> 8 more epochs, 10 in all.
    result = train(_config(acac, tmp_path / "run"), max_time=10.5, callbacks=[clock.step])
    assert result.status == "finished" and result.epochs == 10
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10
    # The cosine ends at its floor on the last step, not 40 epochs later.
    assert float(rows[-1]["lr"]) == pytest.approx(0.05 * 0.01)
    assert float(rows[3]["lr"]) < float(rows[1]["lr"]) < 0.05
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]
    assert state["fitted"] and state["epoch_limit"] == 10
    assert state["schedule"]["total_steps"] == state["global_step"]


def test_without_the_fit_the_same_budget_stops_mid_schedule(acac, tmp_path, clock):
    config = _config(acac, tmp_path / "run")
    config["run"]["fit_to_time"] = False
    result = train(config, max_time=10.5, callbacks=[clock.step])
    assert result.status == "time limit" and result.epochs == 10


def test_a_resume_keeps_the_fitted_schedule(acac, tmp_path, clock):
    train(_config(acac, tmp_path / "whole"), max_time=10.5, callbacks=[clock.step])

    def kill(trainer):
        clock.step(trainer)
        if trainer.epoch == 4 and trainer.step_in_epoch == 2:
            raise StopTraining

    with pytest.raises(StopTraining):
        train(_config(acac, tmp_path / "cut"), max_time=10.5, callbacks=[kill])
    # The second invocation has a fresh budget, but the fit made before the kill holds.
    result = train(_config(acac, tmp_path / "cut"), max_time=100, callbacks=[clock.step])
    assert result.status == "finished" and result.epochs == 10
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["train_state"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["train_state"]
    assert b["global_step"] == a["global_step"]
    for key, value in a["raw_weights"].items():
        torch.testing.assert_close(b["raw_weights"][key], value, rtol=0, atol=1e-12)


def test_the_epoch_time_is_averaged_over_the_first_three_percent(acac, tmp_path, clock):
    # The second epoch takes 3 s, the others 1 s. With 200 s the fit waits for 6 s (3%): the
    # end of epoch 4, timed over epochs 2-4 at 5/3 s each; 194 s left -> 112 more epochs.
    def step(trainer):
        clock.now += (3.0 if trainer.epoch == 1 else 1.0) / trainer.steps_per_epoch
        if trainer.fitted:
            raise StopTraining

    config = _config(acac, tmp_path / "run")
    config["run"]["epochs"] = 500
    with pytest.raises(StopTraining):
        train(config, max_time=200, callbacks=[step])
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["train_state"]
    assert state["fitted"] and state["epoch"] == 4 and state["epoch_limit"] == 116


def _slowing_run(acac, run_dir, clock):
    # Epochs take 1 s until epoch 5, then 1.25 s. The first fit (after epoch 2) plans 19
    # epochs, which would take 22.5 s of the 20 s budget.
    def step(trainer):
        clock.now += (1.0 if trainer.epoch < 5 else 1.25) / trainer.steps_per_epoch

    return train(_config(acac, run_dir), max_time=20, callbacks=[step])


def test_epochs_that_slow_down_later_are_refitted(acac, tmp_path, clock):
    result = _slowing_run(acac, tmp_path / "run", clock)
    assert result.status == "finished" and clock.now <= 20
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["lr"]) == pytest.approx(0.05 * 0.01)
    # 15 s of slower epochs after the first 5 s, less the 0.6 s reserve: 16 epochs.
    assert result.epochs == 16


def test_without_refits_the_slowing_run_overruns(acac, tmp_path, clock, monkeypatch):
    # The control for the test above: the refits are what keep that run inside its budget.
    monkeypatch.setattr(importlib.import_module("mlip.train.loop"), "REFIT_EVERY", 10.0)
    assert _slowing_run(acac, tmp_path / "run", clock).status == "time limit"


def test_fit_to_time_needs_a_budget(acac, tmp_path):
    with pytest.raises(ConfigError, match="run.max_time"):
        train(_config(acac, tmp_path / "run"))

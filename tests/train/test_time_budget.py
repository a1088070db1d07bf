"""run.fit_to_time: a time-limited run shortened to the epochs that fit, its cosine schedule
annealed inside the budget, the fit kept by a resume.

Most tests drive :class:`TimeBudget` and :class:`Progress` as the loop does, with a fake clock
and no training (milliseconds). One trains, with the loop's clock replaced by one that advances
exactly one second per epoch of training steps, so its numbers are exact too."""

import csv
import logging

import pytest
import torch

from mlip.train import ConfigError, StopTraining, progress, train
from mlip.train.progress import Progress, TimeBudget, fit_epoch_limit
from tests.helpers import tiny_config

# The flat train_state keys of last.pt; resuming old runs depends on them.
STATE_KEYS = ["epoch", "step_in_epoch", "global_step", "best_loss", "best_epoch", "best_valid",
              "bad_epochs", "loss_sum", "loss_steps", "elapsed", "status", "fitted",
              "epoch_limit"]


class Clock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self):
        return self.now


def simulate(max_time, seconds, epochs=50, *, p=None, fit=True, clock=None, ctx=None):
    """The loop's use of the budget, epoch ``e`` taking ``seconds(e)`` (validation included);
    (progress, the clock, status, [(epoch, epoch_limit) after each (re)fit])."""
    clock = clock or Clock()
    p = p or Progress(epoch_limit=epochs)
    budget = TimeBudget(max_time, fit=fit, elapsed=p.elapsed, ctx=ctx, clock=clock)
    fits, status = [], "finished"
    while p.epoch < p.epoch_limit:
        budget.epoch_starts(p.epoch, p.step_in_epoch)
        clock.now += seconds(p.epoch)
        p.elapsed = budget.elapsed()
        if budget.spent():  # the loop asks after every step; per epoch is enough here
            status = "time limit"
            break
        p.epoch += 1
        if budget.fit(p, epochs):
            fits.append((p.epoch, p.epoch_limit))
    return p, clock, status, fits


def one_second(epoch):
    return 1.0


def slowing(epoch):
    # 1 s until epoch 5, then 1.25 s: the first fit plans 19 epochs, 22.5 s of a 20 s budget.
    return 1.0 if epoch < 5 else 1.25


def test_the_first_fit_after_the_first_whole_epoch_past_fit_after():
    # 3% of 10.5 s passes in epoch 1, untimed; after epoch 2: 8.5 s left at 1 s per epoch,
    # 3% kept back -> 8 more epochs, 10 in all.
    p, clock, status, fits = simulate(10.5, one_second)
    assert fits == [(2, 10)] and status == "finished" and p.epoch == 10 and clock.now <= 10.5
    assert p.fitted and p.epoch_limit == 10


def test_the_epoch_time_is_averaged_over_the_first_three_percent():
    # The second epoch takes 3 s, the others 1 s. With 200 s the fit waits for 6 s (3%): the
    # end of epoch 4, timed over epochs 2-4 at 5/3 s each; 194 s left -> 112 more epochs.
    p, _, _, fits = simulate(200, lambda e: 3.0 if e == 1 else 1.0, epochs=500)
    assert fits[0] == (4, 116)


def test_the_reserve_is_kept_back():
    # After epoch 2: 8 s left, 0.3 s kept back -> 7 more epochs, not the 8 that just fit.
    _, clock, status, fits = simulate(10, one_second)
    assert fits == [(2, 9)] and status == "finished" and clock.now == 9


def test_epochs_that_slow_down_later_are_refitted(caplog):
    with caplog.at_level(logging.INFO, logger="mlip.train"):
        p, clock, status, fits = simulate(20, slowing)
    assert status == "finished" and clock.now <= 20
    # 15 s of slower epochs after the first 5 s, less the 0.6 s reserve: 16 epochs.
    assert fits[0] == (2, 19) and fits[-1][1] == p.epoch == 16 and len(fits) > 1
    verbs = [r.getMessage().split("the lr schedule ")[1] for r in caplog.records]
    assert verbs == ["fitted to them"] + ["refitted to them"] * (len(fits) - 1)


def test_without_refits_the_slowing_run_overruns(monkeypatch):
    # The control for the test above: the refits are what keep that run inside its budget.
    monkeypatch.setattr(progress, "REFIT_EVERY", 10.0)
    p, _, status, fits = simulate(20, slowing)
    assert fits == [(2, 19)] and status == "time limit"


def test_refits_are_due_every_tenth_and_change_only_a_changed_limit(caplog):
    clock = Clock()
    p = Progress(epoch=1, epoch_limit=30)
    budget = TimeBudget(100, fit=True, clock=clock)
    clock.now = 1.0
    budget.epoch_starts(1, 0)
    # (clock, epochs done, a new limit?, the next fit's budget fraction, the limit)
    expected = [(2, 2, False, 0.03, 30),  # before 3% of the budget
                (3, 3, True, 0.13, 30),  # the first fit, capped by run.epochs
                (12.9, 12, False, 0.13, 30),
                (13.5, 13, False, 0.23, 30),  # due, but the same limit: no refit
                (60, 15, True, 0.63, 23)]  # 59 s for 14 epochs: 37 s left fit 8 more
    with caplog.at_level(logging.INFO, logger="mlip.train"):
        for now, epoch, changed, next_fit, limit in expected:
            clock.now, p.epoch = now, epoch
            assert budget.fit(p, 30) is changed, now
            assert budget.next_fit == pytest.approx(next_fit) and p.epoch_limit == limit, now
    assert [r.getMessage().split("schedule ")[1] for r in caplog.records] == [
        "fitted to them", "refitted to them"]


def test_the_epoch_limit_is_capped_by_run_epochs_and_at_least_the_epoch_done():
    assert fit_epoch_limit(5, 30, 1.0, 100.0, 3.0) == 30
    assert fit_epoch_limit(5, 30, 1.0, 10.0, 3.0) == 12
    assert fit_epoch_limit(5, 30, 4.0, 2.0, 3.0) == 5  # not even the next epoch fits
    assert fit_epoch_limit(5, 30, 1.0, -7.0, 3.0) == 5  # already over the budget
    assert fit_epoch_limit(5, 30, 0.0, 10.0, 3.0) == 30  # an epoch too fast to time
    assert fit_epoch_limit(40, 30, 1.0, 10.0, 3.0) == 40  # run.epochs lowered on a resume


def test_no_fit_before_the_timing_starts_nor_without_fit():
    clock = Clock()
    p = Progress(epoch=3, step_in_epoch=2, epoch_limit=50)  # resumed mid-epoch
    budget = TimeBudget(10, fit=True, clock=clock)
    budget.epoch_starts(3, 2)
    clock.now, p.epoch = 5.0, 4
    assert budget.timing is None and not budget.fit(p, 50) and not p.fitted
    budget.epoch_starts(4, 0)
    budget.epoch_starts(5, 0)  # timing starts once
    assert budget.timing == (5.0, 4)
    _, _, _, fits = simulate(10.5, one_second, fit=False)
    assert fits == []


def test_a_resumed_run_keeps_the_saved_fit():
    fitted, _, _, _ = simulate(10.5, one_second, epochs=50)
    state = fitted.state_dict()
    state["epoch"] = 4
    # The trainer passes fit=not fitted: a fresh budget, however large, refits nothing.
    p = Progress(epoch_limit=50)
    p.load_state_dict(state)
    p, clock, status, fits = simulate(1000, one_second, p=p, fit=not p.fitted)
    assert fits == [] and status == "finished" and p.epoch == p.epoch_limit == 10


def test_progress_round_trips_the_flat_checkpoint_keys():
    p = Progress(epoch=3, step_in_epoch=2, global_step=20, best_loss=0.5, best_epoch=2,
                 best_valid={"energy": 0.1}, bad_epochs=1, loss_sum=1.5, loss_steps=2,
                 elapsed=7.5, status="time limit", fitted=True, epoch_limit=12)
    state = p.state_dict()
    assert list(state) == STATE_KEYS
    q = Progress(epoch_limit=50)
    q.load_state_dict(state)
    assert q == p


def test_old_and_unfitted_checkpoints_take_the_epoch_limit_from_run_epochs():
    state = Progress(epoch=3, epoch_limit=10).state_dict()
    p = Progress(epoch_limit=80)  # run.epochs raised on the resume
    p.load_state_dict(state)  # fitted False: the saved limit is not a fit
    assert p.epoch == 3 and p.epoch_limit == 80 and not p.fitted
    del state["fitted"], state["epoch_limit"]  # saved before run.fit_to_time
    p = Progress(epoch_limit=80)
    p.load_state_dict(state)
    assert p.epoch_limit == 80 and not p.fitted


def test_the_time_is_up_after_max_time_and_elapsed_adds_up():
    clock = Clock(100.0)
    budget = TimeBudget(10.5, elapsed=5.0, clock=clock)
    clock.now = 110.5
    assert not budget.spent() and budget.elapsed() == 15.5
    clock.now = 110.6
    assert budget.spent()
    assert not TimeBudget(None, clock=clock).spent()


class TwoProcesses:
    """This process and another that measured ``other`` = [epoch s, s left, reserve s]."""

    world = 2

    def __init__(self, other):
        self.other = other

    def all_reduce(self, t):
        return t.add_(torch.tensor(self.other, dtype=t.dtype))

    def any(self, flag):
        return flag


def test_the_processes_fit_the_mean_of_their_measurements():
    # After epoch 3 of 100 s: 1 s per epoch here, 3 s there -> 2 s; (97 - 3) // 2 = 47 more.
    _, _, _, fits = simulate(100, one_second, epochs=100, ctx=TwoProcesses([3.0, 97.0, 3.0]))
    assert fits[0] == (3, 50)


# ---- end to end --------------------------------------------------------------------------
def _config(acac, run_dir):
    # The torch kernels: under TRITON_INTERPRET=1 "auto" would pick the slow interpreter.
    return tiny_config(acac, run_dir, run={"epochs": 50, "fit_to_time": True, "kernels": "torch"},
                       optim={"lr": 0.05, "min_lr_ratio": 0.01, "warmup_steps": 2})


def test_a_run_fits_its_budget_and_a_resume_keeps_the_fit(acac, tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(progress, "_clock", clock)

    def step(trainer):  # one second per epoch of steps, nothing for validation
        clock.now += 1.0 / trainer.steps_per_epoch

    # As test_the_first_fit_after_the_first_whole_epoch_past_fit_after: 10 epochs of 50.
    result = train(_config(acac, tmp_path / "whole"), max_time=10.5, callbacks=[step])
    assert result.status == "finished" and result.epochs == 10 and clock.now <= 10.5
    with open(tmp_path / "whole" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # The cosine ends at its floor on the last step, not 40 epochs later.
    assert len(rows) == 10 and float(rows[-1]["lr"]) == pytest.approx(0.05 * 0.01)
    assert float(rows[3]["lr"]) < float(rows[1]["lr"]) < 0.05
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["train_state"]
    assert a["fitted"] and a["epoch_limit"] == 10
    assert a["schedule"]["total_steps"] == a["global_step"]

    def kill(trainer):
        step(trainer)
        if trainer.progress.epoch == 4 and trainer.progress.step_in_epoch == 2:
            raise StopTraining

    clock.now = 0.0
    with pytest.raises(StopTraining):
        train(_config(acac, tmp_path / "cut"), max_time=10.5, callbacks=[kill])
    # The second invocation has a fresh budget, but the fit made before the kill holds.
    result = train(_config(acac, tmp_path / "cut"), max_time=100, callbacks=[step])
    assert result.status == "finished" and result.epochs == 10
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["train_state"]
    assert b["global_step"] == a["global_step"] and list(b)[-13:] == STATE_KEYS
    for key, value in a["raw_weights"].items():
        torch.testing.assert_close(b["raw_weights"][key], value, rtol=0, atol=1e-12)


def test_fit_to_time_needs_a_budget(acac, tmp_path):
    with pytest.raises(ConfigError, match="run.max_time"):
        train(_config(acac, tmp_path / "run"))

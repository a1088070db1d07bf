"""Where a training run stands (:class:`Progress`) and the time it has (:class:`TimeBudget`).

``Progress`` holds the loop's counters and records: ``last.pt`` stores them flat in its
``train_state`` under the field names, so a resume continues exactly where the run stopped.
``TimeBudget`` is ``run.max_time`` for one invocation and ``run.fit_to_time``'s fit of the
run's epochs to it; it keeps no state across invocations beyond what it writes to Progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch

from . import distributed

log = logging.getLogger("mlip.train")
_clock = time.monotonic  # the loop's only clock: tests replace it
FIT_AFTER = 0.03  # run.fit_to_time times the epochs in the first 3% of the budget
REFIT_EVERY = 0.1  # and again after every further tenth, from the mean pace so far
RESERVE = 0.03  # of the budget, kept back for the last epoch's overrun and the test set


@dataclass
class Progress:
    epoch: int = 0  # epochs done
    step_in_epoch: int = 0
    global_step: int = 0
    best_loss: float = float("inf")
    best_epoch: int | None = None
    best_valid: dict = field(default_factory=dict)
    bad_epochs: int = 0  # epochs since the best, for run.patience
    loss_sum: float = 0.0  # the current epoch's training loss so far
    loss_steps: int = 0
    elapsed: float = 0.0  # training seconds over all invocations
    status: str = "finished"
    # Whether run.fit_to_time has fitted the run, and the last epoch: run.epochs or the fit.
    fitted: bool = False
    epoch_limit: int = 0

    def state_dict(self) -> dict:
        # Not dataclasses.asdict: that deep-copies best_valid for nothing.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def load_state_dict(self, state: dict) -> None:
        for f in fields(self):
            if f.name not in ("fitted", "epoch_limit"):
                setattr(self, f.name, state[f.name])
        # Checkpoints from before run.fit_to_time lack these keys, and an unfitted run takes
        # its epoch_limit from run.epochs, which a resume may change.
        if state.get("fitted"):
            self.fitted, self.epoch_limit = True, int(state["epoch_limit"])


class TimeBudget:
    """``max_time`` seconds from now (None: no limit) and, with ``fit``, the fits to them.

    ``elapsed`` is the run's training time before this invocation. ``ctx`` makes every
    process decide alike (they stop together and fit the same epochs); ``clock`` defaults to
    the module's ``_clock``. A resumed run that was fitted gets ``fit=False``: it keeps the
    saved fit, and with it its lr schedule, whatever this invocation's budget."""

    def __init__(self, max_time: float | None, *, fit: bool = False, elapsed: float = 0.0,
                 ctx: distributed.Context | None = None, clock: Callable[[], float] | None = None):
        self.clock = _clock if clock is None else clock
        self.ctx = distributed.Context() if ctx is None else ctx
        self.max_time, self.elapsed0 = max_time, elapsed
        self.start = self.clock()
        # (clock, epoch) when the first whole epoch after this invocation's first began.
        self.timing: tuple[float, int] | None = None
        # The budget fraction at which the next fit is due; None: no fit in this invocation.
        self.next_fit = FIT_AFTER if fit else None

    def elapsed(self) -> float:
        return self.elapsed0 + self.clock() - self.start

    def spent(self) -> bool:
        """True on every process once the time is up on any."""
        return self.max_time is not None and self.ctx.any(self.clock() - self.start > self.max_time)

    def epoch_starts(self, epoch: int, step_in_epoch: int) -> None:
        # The invocation's first epoch carries one-off costs (and a resumed one is partial).
        if self.timing is None and step_in_epoch == 0 and epoch >= 1:
            self.timing = (self.clock(), epoch)

    def fit(self, progress: Progress, epochs: int) -> bool:
        """After an epoch and its validation (which the epoch time must include): when a fit is
        due, set ``progress.epoch_limit`` to what fits, at most ``epochs``. True when it did."""
        if self.next_fit is None or self.timing is None:
            return False
        now = self.clock()
        used = now - self.start
        # One epoch's time is noisy: average over the first FIT_AFTER of the budget, then
        # refit every REFIT_EVERY, as epochs often slow down (or speed up) later on.
        if not self.ctx.any(used >= self.next_fit * self.max_time):
            return False
        t0, epoch0 = self.timing
        done = self._fit(progress, epochs, (now - t0) / (progress.epoch - epoch0),
                         self.max_time - used, RESERVE * self.max_time)
        while self.next_fit * self.max_time <= used:
            self.next_fit += REFIT_EVERY
        return done

    def _fit(self, p: Progress, epochs: int, epoch_seconds: float, remaining: float,
             reserve: float) -> bool:
        # Every process must fit the same number: average the measurements over them.
        t = self.ctx.all_reduce(torch.tensor([epoch_seconds, remaining, reserve],
                                             dtype=torch.float64))
        epoch_seconds, remaining, reserve = (float(v) / self.ctx.world for v in t)
        limit = fit_epoch_limit(p.epoch, epochs, epoch_seconds, remaining, reserve)
        first = not p.fitted
        if not first and limit == p.epoch_limit:
            return False
        # A refit moves the cosine's horizon by a few percent: a small step in the lr.
        p.epoch_limit, p.fitted = limit, True
        log.info("run.fit_to_time: %.1f s per epoch, %.0f s left: %d epochs in all (of %d), "
                 "the lr schedule %s to them", epoch_seconds, remaining, p.epoch_limit, epochs,
                 "fitted" if first else "refitted")
        return True


def fit_epoch_limit(epoch: int, epochs: int, epoch_seconds: float, remaining: float,
                reserve: float) -> int:
    """The last epoch that ends ``reserve`` seconds before the budget: no later than
    ``epochs``, and no earlier than ``epoch``, the one just done."""
    more = int(max(remaining - reserve, 0.0) // max(epoch_seconds, 1e-9))
    return max(epoch, min(epochs, epoch + more))

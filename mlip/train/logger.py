"""Where training reports go: log lines (and ``train.log``), ``metrics.csv``, TensorBoard."""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

from ..metrics import TERMS

log = logging.getLogger("mlip.train")

COLUMNS = ["epoch", "step", "time_s", "lr", "train_loss", "valid_loss"] + [
    f"valid_{term}_{kind}_mev" for term in TERMS for kind in ("mae", "rmse")
]


class RunLogger:
    """Epoch rows to ``metrics.csv`` (and TensorBoard when installed); ``train.log`` beside.

    Only the main process writes; the others get a logger that does nothing."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool, epochs_done: int = 0):
        self.enabled = enabled
        self.csv_path = run_dir / "metrics.csv"
        self.writer = None
        self._handlers: list[logging.Handler] = []
        if not enabled:
            return
        file_handler = logging.FileHandler(run_dir / "train.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self._handlers.append(file_handler)
        if not logging.getLogger().handlers:  # called from Python without logging set up
            self._handlers.append(logging.StreamHandler(sys.stderr))
        for h in self._handlers:
            log.addHandler(h)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
        self._keep_rows_before(epochs_done)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("TensorBoard logging skipped: the tensorboard package is not installed")
            else:
                self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def _keep_rows_before(self, epochs_done: int) -> None:
        """A resumed run redoes the epochs after its checkpoint: drop their old rows."""
        if not self.csv_path.exists():
            return
        with open(self.csv_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epochs_done]
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows(rows)

    def epoch(self, row: dict) -> None:
        if not self.enabled:
            return
        new = not self.csv_path.exists()
        with open(self.csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: row.get(k, "") for k in COLUMNS})
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, row["step"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        for h in self._handlers:
            log.removeHandler(h)
            h.close()

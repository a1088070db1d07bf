"""Tiny data and tiny models for the training, CLI and EOS tests (float64, seconds on a CPU)."""

from pathlib import Path

import ase.io

from .paths import ACAC

TINY_MODEL = {"name": "equivariant",
              "hyperparameters": {"lmax": 1, "channels": 8, "num_layers": 1}}


def write_acac(path: Path, n: int, source: str = "train_300K.xyz") -> Path:
    """The first ``n`` frames of the acac data set (15 atoms each) as extxyz."""
    ase.io.write(path, ase.io.read(ACAC / source, index=f":{n}"), format="extxyz")
    return path


def tiny_config(train: Path, run_dir: Path, **sections) -> dict:
    config = {
        "model": TINY_MODEL,
        "data": {"train": str(train), "valid_fraction": 0.25, "max_atoms": 60},
        "optim": {"lr": 0.05, "ema_decay": 0.5, "warmup_steps": 2},
        "run": {"epochs": 3, "dtype": "float64", "run_dir": str(run_dir), "tensorboard": False},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def kill_and_resume(config: dict, kill_at: int):
    """Train as if the process were killed right after step ``kill_at``, then run the same
    command again (the run directory's last.pt continues it); the second run's result."""
    import pytest

    from mlip.train import StopTraining, train

    def kill(trainer):
        if trainer.progress.global_step == kill_at:
            raise StopTraining

    with pytest.raises(StopTraining):
        train(config, callbacks=[kill])
    return train(config)


def tiny_cu_model(path: Path) -> Path:
    """An untrained one-layer copper model (seeded), saved to ``path``. Pair repulsion gives its
    E(V) a minimum, which the EOS and NPT/cell-relax tests need."""
    import torch

    import mlip

    torch.manual_seed(0)
    model = mlip.build_model(
        "equivariant", elements=[29], lmax=1, channels=4, num_layers=1, pair_repulsion=True
    )
    model.save(path)
    return path

"""Training checkpoints: a model checkpoint (DESIGN §3) plus what a resume needs.

``best.pt`` and ``last.pt`` are ordinary model checkpoints, so ``mlip.load_model`` reads them
(their ``state_dict`` holds the EMA weights when the EMA is on). ``last.pt`` adds
``train_state``: the raw weights, optimizer, schedule, EMA, RNG states and the data position.
Everything is tensors and plain Python types, so ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import yaml

from .._io import atomic_path, atomic_write_text  # noqa: F401 (their home before mlip._io)
from ..models.registry import CheckpointError, atomic_save, checkpoint_dict, read_checkpoint
from .config import ConfigError, TrainConfig

# Settings a resumed run may change; any other difference from the saved config is an error.
RESUMABLE_CHANGES = {"run.run_dir", "run.epochs", "run.max_time", "run.patience", "run.device",
                     "run.log_every", "run.tensorboard", "run.checkpoint_every", "data.workers",
                     "run.kernels", "run.compile"}


def rng_state() -> dict:
    """torch, CUDA, numpy and Python RNG states as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path, model, training: dict, train_state: dict | None = None) -> None:
    """Write a model checkpoint of ``model`` (the weights to use), atomically."""
    ckpt = checkpoint_dict(model, training)
    if train_state is not None:
        ckpt["train_state"] = train_state
    atomic_save(ckpt, path)


def load_train_state(path) -> tuple[dict, dict]:
    """(checkpoint, train_state) of a ``last.pt``; a CheckpointError if it cannot resume."""
    ckpt = read_checkpoint(path)
    if "train_state" not in ckpt:
        raise CheckpointError(f"{path} has no training state; it cannot be resumed")
    return ckpt, ckpt["train_state"]


def _flatten(d: dict, prefix: str = "") -> dict:
    """``{"run": {"epochs": 3}}`` -> ``{"run.epochs": 3}``: sections and their keys only."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and prefix.count(".") < 1:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def check_resumable(config: TrainConfig, saved_path: Path) -> None:
    """A ConfigError unless ``config`` differs from the run's saved config only in
    :data:`RESUMABLE_CHANGES`."""
    # Keys added to the schema since the run was saved take their defaults.
    saved = _flatten(TrainConfig().to_dict())
    saved.update(_flatten(yaml.safe_load(Path(saved_path).read_text())))
    new = _flatten(config.to_dict())
    changed = sorted(k for k in set(saved) | set(new)
                     if saved.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
    if changed:
        raise ConfigError(f"cannot resume {Path(saved_path).parent}: the configuration differs "
                          f"in {', '.join(changed)}; use a new run.run_dir")

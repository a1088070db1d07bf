"""Training checkpoints: a model checkpoint (DESIGN §3) plus what a resume needs.

``best.pt`` and ``last.pt`` are ordinary model checkpoints, so ``mlip.load_model`` reads them
(their ``state_dict`` holds the EMA weights when the EMA is on). ``last.pt`` adds
``train_state``: the raw weights, optimizer, schedule, EMA, RNG states and the data position.
Everything is tensors and plain Python types, so ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from .._io import atomic_path, atomic_write_text  # noqa: F401 (their home before mlip._io)
from ..models.registry import CheckpointError, atomic_save, checkpoint_dict, read_checkpoint


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

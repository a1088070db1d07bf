"""Model registry, presets and checkpoints (DESIGN §3).

A checkpoint is data, not a pickle: ``{format_version, model, hyperparameters, state_dict, e0,
scale, units, versions, conservative, training}``, loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .._version import __version__
from ..data import keys as K
from ..nn.repulsion import DEFAULT_SWITCH, LEGACY_SWITCH
from .base import Potential

# 2: pair_repulsion is saved as its switch-off fraction; format 1 saved ``true`` for 1.0.
# 3: the equivariant family's messages default to e3nn's "component" scale (message_norm);
#    earlier checkpoints were trained with "integral".
# 4: grid mixing evaluates on a Lebedev rule (eval_grid_kind); earlier ones on a Gauss grid.
FORMAT_VERSION = 4
# Written into every checkpoint: the units of the field table's positions and targets.
UNITS = {
    name: K.FIELDS[key].unit
    for name, key in (("energy", K.ENERGY), ("length", K.POSITIONS), ("forces", K.FORCES),
                      ("stress", K.STRESS))
}

_MODELS: dict[str, Callable[..., Potential]] = {}
_PRESETS: dict[str, tuple[str, dict]] = {}


class CheckpointError(ValueError):
    """A file that is not a usable mlip checkpoint."""


def register_model(name: str):
    """Class decorator: make a Potential buildable as ``build_model(name, **hyperparameters)``."""

    def wrap(cls):
        _MODELS[name] = cls
        return cls

    return wrap


def register_preset(name: str, model: str, **hyperparameters) -> None:
    _PRESETS[name] = (model, hyperparameters)


def available_models() -> list[str]:
    _load_builtin()
    return sorted(_MODELS) + sorted(_PRESETS)


def _load_builtin() -> None:
    # Importing the families registers them. An ImportError inside one is a bug to show as
    # it is, never an "unknown model".
    from . import equivariant, transformer  # noqa: F401


def build_model(name: str, **hyperparameters) -> Potential:
    """Build a registered model or preset; preset values are overridden by ``hyperparameters``."""
    _load_builtin()
    preset = name
    if name in _PRESETS:
        model_name, defaults = _PRESETS[name]
        hyperparameters = {**defaults, **hyperparameters}
    elif name in _MODELS:
        model_name, preset = name, None
    else:
        raise ValueError(f"unknown model {name!r}; available: {available_models()}")
    if hyperparameters.get("pair_repulsion") is True:
        # Saved resolved, so that a later change of the default cannot change a saved model.
        hyperparameters = {**hyperparameters, "pair_repulsion": DEFAULT_SWITCH}
    model = _MODELS[model_name](**hyperparameters)
    model.model_name = model_name
    model.preset = preset
    # Defaults a model resolves itself are saved too: a later default cannot change a model.
    model.hyperparameters = {**hyperparameters, **getattr(model, "resolved_defaults", {})}
    return model.to(model.dtype)


def _versions() -> dict[str, str]:
    import ase
    import e3nn

    # Plain strings: torch's TorchVersion is not allowed by weights_only loading.
    return {"mlip": str(__version__), "torch": str(torch.__version__),
            "e3nn": str(e3nn.__version__), "ase": str(ase.__version__)}


def checkpoint_dict(model: Potential, training: dict | None = None) -> dict:
    if not hasattr(model, "model_name"):
        raise CheckpointError("only models made by build_model or load_model can be saved")
    return {
        "format_version": FORMAT_VERSION,
        "model": model.model_name,
        "preset": model.preset,
        "hyperparameters": model.hyperparameters,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "e0": {int(z): float(model.e0[z]) for z in model.elements.tolist()},
        "scale": float(model.scale),
        "conservative": bool(model.conservative),
        "units": dict(UNITS),
        "versions": _versions(),
        "training": dict(training or {}),
    }


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside ``path``, then rename: never a half-written file."""
    from .._io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def save_model(model: Potential, path, training: dict | None = None) -> None:
    atomic_save(checkpoint_dict(model, training), path)


def read_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        from ..pretrained import pretrained_models

        raise CheckpointError(f"checkpoint {path} does not exist, and it is not the name of a "
                              f"pretrained model ({', '.join(pretrained_models()) or 'none'})")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not an mlip checkpoint: not a file written by "
                              "torch.save (an mlip checkpoint is a zip archive)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        # Only torch's first line: its advice to retry with weights_only=False would run
        # whatever code a file from elsewhere carries.
        if "weights only" in str(err).lower() or "weights_only" in str(err):
            reason = ("it holds Python objects besides tensors and plain data, which mlip never "
                      "unpickles: they could run code")
        else:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable mlip checkpoint: {reason}") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path} is not an mlip checkpoint (no format_version)")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format {ckpt['format_version']}; this mlip reads up to {FORMAT_VERSION}"
        )
    for key in ("model", "hyperparameters", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks the key {key!r}")
    return ckpt


def model_from_checkpoint(ckpt: dict, dtype=None) -> Potential:
    hyperparameters = dict(ckpt["hyperparameters"])
    if ckpt["format_version"] < 2 and hyperparameters.get("pair_repulsion") is True:
        hyperparameters["pair_repulsion"] = LEGACY_SWITCH
    if ckpt["format_version"] < 3 and ckpt["model"] == "equivariant":
        hyperparameters.setdefault("message_norm", "integral")
    if ckpt["format_version"] < 4 and ckpt["model"] == "equivariant":
        hyperparameters.setdefault("eval_grid_kind", "gauss")
    if dtype is not None:
        hyperparameters["dtype"] = dtype if isinstance(dtype, str) else str(dtype).split(".")[-1]
    model = build_model(ckpt["model"], **hyperparameters)
    model.preset = ckpt.get("preset")
    model.load_state_dict(ckpt["state_dict"])
    model.to(model.dtype)
    model.training_summary = ckpt.get("training", {})
    return model


def load_model(path, device=None, dtype=None) -> Potential:
    """Load a checkpoint written by :meth:`Potential.save`, or a shipped model by its name
    (:mod:`mlip.pretrained`); ``dtype`` overrides the saved one."""
    from ..pretrained import resolve_model

    model = model_from_checkpoint(read_checkpoint(resolve_model(path)), dtype=dtype)
    if device is not None:
        model.to(device)
    return model.eval()

"""Before training: read and split the data, build or load the model, fit E0, scale and the
mean neighbour count from the training set and write them into the model."""

from __future__ import annotations

import glob
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data import keys as K
from ..data.hdf5 import HDF5Dataset
from ..data.loader import compute_statistics, fit_e0, split_indices
from ..data.readers import DataError, guess_format, read_frames
from ..models.registry import build_model, model_from_checkpoint, read_checkpoint
from .config import ConfigError, DataConfig, TrainConfig, element_map

log = logging.getLogger("mlip.train")


class Subset(Sequence):
    """Frames ``indices`` of a sequence of frames (a list or an HDF5 cache), read lazily."""

    def __init__(self, frames, indices):
        self.frames, self.indices = frames, np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        return self.frames[int(self.indices[i])]


def read_dataset(path: str, data: DataConfig):
    """Frames of ``path``: an HDF5 cache is opened for random access, other formats are read
    into memory with their reader (bad records skipped and counted by the reader). A glob
    pattern (``outcars/*/OUTCAR*``) reads every file it matches, in sorted order."""
    if not Path(path).exists() and glob.has_magic(path):
        files = sorted(glob.glob(path))
        if not files:
            raise DataError(f"{path}: the pattern matches no file")
        return [f for file in files for f in read_dataset(file, data)]
    # A missing file is read_frames' "no such file", not a failed guess from its name.
    if (data.format or (Path(path).exists() and guess_format(path))) == "hdf5":
        return HDF5Dataset(path)  # random access, not read into memory
    frames = list(read_frames(path, format=data.format, **data.reader_options))
    if not frames:
        raise DataError(f"{path}: no usable frames")
    return frames


def split_data(config: TrainConfig):
    """(train, valid, test) frame sequences; valid is None when there is no validation set."""
    d = config.data
    frames = read_dataset(d.train, d)
    test = read_dataset(d.test, d) if d.test is not None else None
    if d.test_fraction > 0:
        frames, test = _hold_out(frames, d.test_fraction, "data.test_fraction", d.split_seed)
    if d.valid is not None:
        train, valid = frames, read_dataset(d.valid, d)
    elif d.valid_fraction > 0:
        train, valid = _hold_out(frames, d.valid_fraction, "data.valid_fraction", d.split_seed)
    else:
        train, valid = frames, None
    return train, valid, test


def _hold_out(frames, fraction: float, key: str, seed: int):
    """(kept, held out): a seeded ``fraction`` of the frames held out."""
    keep, held = split_indices(len(frames), [1 - fraction, fraction], seed=seed)
    if len(held) == 0 or len(keep) == 0:
        raise ConfigError(f"{key} {fraction} of {len(frames)} frames leaves an empty split")
    return Subset(frames, keep), Subset(frames, held)


def _e0(config: TrainConfig, stats_e0: dict) -> tuple[dict[int, float], str]:
    d = config.data
    if isinstance(d.e0, dict):
        return element_map(d.e0, "data.e0"), "given"
    return stats_e0, d.e0


def _statistics(config: TrainConfig, train, cutoff: float):
    d = config.data
    isolated = None
    if d.e0 == "isolated":
        isolated = list(read_frames(d.isolated, format=d.format, **d.reader_options))
    e0 = element_map(d.e0, "data.e0") if isinstance(d.e0, dict) else d.e0
    return compute_statistics(train, cutoff, e0=e0, isolated=isolated, neighbors=d.neighbors)


def _scale(config: TrainConfig, stats) -> float:
    if not isinstance(config.data.scale, str):
        return float(config.data.scale)
    if not np.isfinite(stats.force_rms) or stats.force_rms <= 0:
        log.warning("the training set has no forces: scale 1.0 instead of the force RMS")
        return 1.0
    return float(stats.force_rms)


def _accepts(model, name: str) -> bool:
    return name in inspect.signature(type(model).__init__).parameters


def new_model(config: TrainConfig, train) -> tuple[torch.nn.Module, dict]:
    """Build the configured model with E0, scale, elements and avg_num_neighbors from ``train``."""
    m = config.model
    hp = dict(m.hyperparameters)
    if hp.get("dtype", config.run.dtype) != config.run.dtype:
        raise ConfigError(f"model.hyperparameters.dtype {hp['dtype']!r} differs from run.dtype "
                          f"{config.run.dtype!r}; set run.dtype only")
    hp["dtype"] = config.run.dtype
    probe = build_model(m.name, **hp)  # the cutoff (and constructor) of this model
    stats = _statistics(config, train, probe.cutoff)
    missing = sorted(set(stats.elements) - set(probe.elements.tolist()))
    if _accepts(probe, "elements") and "elements" not in hp:
        hp["elements"] = stats.elements
    elif missing:
        from ase.data import chemical_symbols

        raise ConfigError(f"the training data has elements {[chemical_symbols[z] for z in missing]}"
                          " that model.hyperparameters.elements lacks")
    if _accepts(probe, "avg_num_neighbors") and "avg_num_neighbors" not in hp:
        hp["avg_num_neighbors"] = float(stats.mean_num_neighbors)
    torch.manual_seed(config.run.seed)
    model = build_model(m.name, **hp)
    e0, method = _e0(config, stats.e0)
    absent = sorted(set(stats.elements) - set(e0))
    if absent:
        raise ConfigError(f"no E0 for elements {absent} (data.e0 {method})")
    model.set_e0(e0)
    model.set_scale(_scale(config, stats))
    summary = {
        "e0_method": method,
        "scale": float(model.scale),
        "avg_num_neighbors": float(stats.mean_num_neighbors),
        "force_rms": float(stats.force_rms),
        "n_train_frames": int(stats.n_frames),
        "n_train_atoms": int(stats.n_atoms),
    }
    log.info("model %s: %d parameters, elements %s, cutoff %.2f Å", m.name,
             sum(p.numel() for p in model.parameters()), model.elements.tolist(), model.cutoff)
    log.info("E0 (%s) %s eV; scale %.4f; mean neighbours %.2f", method,
             {z: round(v, 4) for z, v in e0.items()}, float(model.scale),
             stats.mean_num_neighbors)
    _check_repulsion(model, stats)
    return model, summary


def _check_repulsion(model, stats) -> None:
    """Say when the ZBL wall acts on the training data: the network must then learn around it."""
    if model.repulsion is None or stats.closest_pair is None:
        return
    ratio, frame, za, zb, d = stats.closest_pair
    if ratio < model.repulsion.switch:
        log.warning("the ZBL pair repulsion acts on the training data: training frame %d has "
                    "Z %d-%d at %.3f Å, %.2f of their covalent radii sum, inside the wall's "
                    "switch-off at %.2f; the network learns the energy on top of the wall there "
                    "(a smaller model.hyperparameters.pair_repulsion moves the switch-off in)",
                    frame, za, zb, d, ratio, model.repulsion.switch)


def _extend_state(old: dict, new: dict, old_elements: list[int], new_elements: list[int]):
    """Copy ``old`` into ``new``; per-element tables (first dim = number of elements) keep the
    rows of the old elements and the new elements' rows as initialised."""
    rows = torch.tensor([new_elements.index(z) for z in old_elements])
    out = {}
    for key, value in new.items():
        if key == "elements" or key not in old:
            out[key] = value
            continue
        prev = old[key]
        if prev.shape == value.shape:
            out[key] = prev
        elif (prev.ndim == value.ndim and prev.shape[1:] == value.shape[1:]
              and prev.shape[0] == len(old_elements) and value.shape[0] == len(new_elements)):
            grown = value.clone()
            grown[rows] = prev.to(value.dtype)
            out[key] = grown
        else:
            raise ConfigError(f"cannot extend {key} from {tuple(prev.shape)} to "
                              f"{tuple(value.shape)} for new elements")
    return out


def finetune_model(config: TrainConfig, train) -> tuple[torch.nn.Module, dict]:
    """The model of ``finetune.checkpoint``, with new elements and E0 handled as configured."""
    f = config.finetune
    ckpt = read_checkpoint(f.checkpoint)
    if config.model.name and config.model.name not in (ckpt["model"], ckpt.get("preset")):
        raise ConfigError(f"model.name {config.model.name!r} differs from the checkpoint's model "
                          f"{ckpt.get('preset') or ckpt['model']!r}; leave it out to fine-tune")
    model = model_from_checkpoint(ckpt, dtype=config.run.dtype)
    old_elements = model.elements.tolist()
    stats = _statistics(config, train, model.cutoff)
    _check_repulsion(model, stats)
    new = sorted(set(stats.elements) - set(old_elements))
    if new and f.new_elements != "add":
        raise ConfigError(f"the training data has elements {new} that {f.checkpoint} was not "
                          "trained on; set finetune.new_elements: add to extend the model")
    if new:
        # The loaded model's hyperparameters: older checkpoints' defaults already resolved.
        hp = {**model.hyperparameters, "elements": sorted(old_elements + new)}
        torch.manual_seed(config.run.seed)
        grown = build_model(ckpt["model"], **hp)
        grown.preset = ckpt.get("preset")
        grown.load_state_dict(_extend_state(model.state_dict(), grown.state_dict(),
                                            old_elements, grown.elements.tolist()))
        model = grown
        log.info("fine-tuning: added elements %s", new)
    if f.e0 == "keep":
        e0 = {z: float(model.e0[z]) for z in old_elements}
        if new:
            e0.update(_fit_new_e0(train, e0, new))
        method = "kept" + (" (new elements fitted)" if new else "")
    elif f.e0 == "refit":
        e0, method = _e0(config, stats.e0)
    else:
        e0, method = element_map(f.e0, "finetune.e0"), "given"
    absent = sorted(set(stats.elements) - set(e0))
    if absent:
        raise ConfigError(f"no E0 for elements {absent} (finetune.e0)")
    model.set_e0(e0)
    summary = {"finetuned_from": str(f.checkpoint), "e0_method": method,
               "added_elements": new, "scale": float(model.scale),
               "n_train_frames": int(stats.n_frames), "n_train_atoms": int(stats.n_atoms)}
    return model, summary


def _fit_new_e0(frames, known: dict[int, float], new: list[int]) -> dict[int, float]:
    """E0 of the new elements by least squares on the energy left after the known E0."""
    residual = []
    for i in range(len(frames)):
        fr = frames[i]
        if K.ENERGY not in fr:
            continue
        z = np.asarray(fr[K.ATOMIC_NUMBERS])
        if not np.isin(z, new).any():
            continue
        known_sum = sum(known[int(a)] for a in z if int(a) in known)
        residual.append({**fr, K.ENERGY: float(fr[K.ENERGY]) - known_sum,
                         K.ATOMIC_NUMBERS: z[np.isin(z, new)]})
    if not residual:
        raise ConfigError(f"no frame with an energy contains the new elements {new}")
    return fit_e0(residual)

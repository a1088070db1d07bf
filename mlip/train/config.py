"""Training configuration: frozen dataclasses, read from YAML, validated before any work.

Every key has a default; unknown keys and values of the wrong type are errors that name the key
(``optim.lr``). ``--set section.key=value`` overrides parse the value as a YAML scalar, so
``--set run.epochs=5`` gives an int and ``--set data.e0='{1: -13.6}'`` a dict.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ModelConfig:
    name: str | None = "facet-s"  # None when finetune.checkpoint gives the model
    # Constructor arguments of the model; elements and avg_num_neighbors come from the data
    # unless given here.
    hyperparameters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    train: str | None = None
    valid: str | None = None  # a file; otherwise valid_fraction of train is held out
    test: str | None = None  # evaluated with the best model at the end
    format: str | None = None  # reader name; guessed from the file name when None
    reader_options: dict = field(default_factory=dict)
    valid_fraction: float = 0.1
    # Without a test file: this fraction of train is held out first as a fixed test split
    # (seeded by split_seed), and valid_fraction is taken from the rest.
    test_fraction: float = 0.0
    split_seed: int = 0
    max_atoms: int = 512  # per batch (per process under DDP)
    max_edges: int | None = None
    batch_size: int | None = None  # at most this many structures per batch
    e0: str | dict = "fit"  # "fit" (least squares), "isolated" (needs isolated) or {Z: eV}
    isolated: str | None = None  # file of single-atom frames with energies
    scale: str | float = "force_rms"  # "force_rms" of the training set, or a number
    neighbors: str = "vesin"
    workers: int = 0


@dataclass(frozen=True)
class LossConfig:
    energy_weight: float = 1.0  # on energy per atom
    forces_weight: float = 10.0
    stress_weight: float = 1.0  # periodic structures with a stress only
    kind: Literal["mse", "huber"] = "mse"
    huber_delta: float = 0.01
    element_weights: dict = field(default_factory=dict)  # {Z or symbol: weight} on force errors
    tag_weights: dict = field(default_factory=dict)  # {OC20 tag: weight} on force errors
    include_fixed: bool = False  # forces of fixed atoms (FixAtoms, "fixed") in the loss


@dataclass(frozen=True)
class OptimConfig:
    optimizer: Literal["adamw", "amsgrad"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    # "fan_in": matrices' lr divided by sqrt(fan_in), as in e3nn's parametrisation (optim.py)
    lr_scaling: Literal["none", "fan_in"] = "none"
    schedule: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01  # cosine floor, as a fraction of lr
    plateau_factor: float = 0.5
    plateau_patience: int = 5  # epochs without improvement before the lr drops
    ema_decay: float = 0.99  # 0 disables the EMA
    grad_clip: float = 10.0  # max gradient norm; 0 disables


@dataclass(frozen=True)
class RunConfig:
    epochs: int = 100
    max_time: float | None = None  # seconds of training, then a clean stop (resumable)
    # Shorten the run (and its lr schedule) to the epochs that fit in max_time, timed over the
    # first 3% of it, so that a time-limited cosine run still anneals; fixed once, then saved.
    fit_to_time: bool = False
    patience: int | None = None  # epochs without a better validation loss before stopping
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    bf16: bool = False  # bf16 autocast of the forward pass; GPU only
    kernels: Literal["auto", "torch", "triton", "compile"] = "auto"  # mlip.kernels backend
    # Trace energy and forces into one graph and torch.compile it with its backward
    # (mlip/train/compiled.py): 1.4x faster CPU steps after a one-off compile of minutes.
    compile: bool = False
    run_dir: str = "runs/default"
    log_every: int = 10  # steps between log lines when not on a terminal
    checkpoint_every: int = 0  # steps between last.pt saves; 0 = at the end of each epoch only
    tensorboard: bool = True  # when the tensorboard package is installed


@dataclass(frozen=True)
class FinetuneConfig:
    checkpoint: str | None = None
    new_elements: Literal["error", "add"] = "error"
    e0: str | dict = "keep"  # "keep", "refit" (as data.e0 says) or {Z: eV}


@dataclass(frozen=True)
class EquivarianceConfig:
    """How a model that is not equivariant by construction learns the symmetry (issue #6).

    The terms combine: ``augment`` rotates every training structure by a random rotation;
    ``transip_weight`` adds TransIP's alignment loss on the pooled embedding (the model needs
    ``embed``); ``regularizer_weight`` adds the output penalty |F(xR^T)R - F(x)|^2 + energy.
    """

    augment: bool = False
    reflect: bool = False  # also draw improper rotations (augmentation and regularizer)
    transip_weight: float = 0.0
    transip_hidden: int = 128
    transip_rotation: Literal["6d", "matrix"] = "6d"
    transip_detach_target: bool = False
    regularizer_weight: float = 0.0
    regularizer_energy_weight: float = 1.0  # on (eV/atom)^2, relative to the force term


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    equivariance: EquivarianceConfig = field(default_factory=EquivarianceConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **sections) -> TrainConfig:
        return dataclasses.replace(self, **sections)


# ---- parsing and checking --------------------------------------------------------------------


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    return "null" if hint is type(None) else hint.__name__


def _build(cls, values, where: str):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'configuration'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(f"unknown key {where + '.' if where else ''}{key}; "
                              f"known: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, name)
            continue
        if isinstance(value, float) and hint is int and value.is_integer():
            value = int(value)
        if isinstance(value, str) and _type_ok(0.5, hint) and _float(value) is not None:
            value = _float(value)  # PyYAML reads 1e-3 (no dot) as a string
        if not _type_ok(value, hint):
            raise ConfigError(f"{name} must be {_describe(hint)}, got {value!r}")
        if hint is float or (typing.get_origin(hint) in (typing.Union, types.UnionType)
                             and float in typing.get_args(hint) and isinstance(value, int)
                             and not isinstance(value, bool)):
            value = float(value)
        kwargs[key] = value
    return cls(**kwargs)


def _positive(name, value, allow_zero=False):
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def validate(config: TrainConfig) -> TrainConfig:
    """Check values that types alone do not catch; return the config unchanged."""
    d, lo, o, r, f = config.data, config.loss, config.optim, config.run, config.finetune
    if not config.model.name and f.checkpoint is None:
        raise ConfigError("model.name is required (or finetune.checkpoint)")
    if d.train is None:
        raise ConfigError("data.train is required")
    if not 0 <= d.valid_fraction < 1:
        raise ConfigError(f"data.valid_fraction must be in [0, 1), got {d.valid_fraction}")
    if not 0 <= d.test_fraction < 1:
        raise ConfigError(f"data.test_fraction must be in [0, 1), got {d.test_fraction}")
    if d.test_fraction > 0 and d.test is not None:
        raise ConfigError("data.test and data.test_fraction both give a test set; keep one")
    _positive("data.max_atoms", d.max_atoms)
    _positive("data.max_edges", d.max_edges)
    _positive("data.batch_size", d.batch_size)
    _positive("data.workers", d.workers, allow_zero=True)
    if isinstance(d.e0, str) and d.e0 not in ("fit", "isolated"):
        raise ConfigError(f"data.e0 must be 'fit', 'isolated' or a mapping Z: eV, got {d.e0!r}")
    if d.e0 == "isolated" and d.isolated is None:
        raise ConfigError("data.e0 'isolated' needs data.isolated (a file of single atoms)")
    if isinstance(d.scale, str) and d.scale != "force_rms":
        raise ConfigError(f"data.scale must be 'force_rms' or a number, got {d.scale!r}")
    if not isinstance(d.scale, str):
        _positive("data.scale", d.scale)
    for key in ("energy_weight", "forces_weight", "stress_weight"):
        _positive(f"loss.{key}", getattr(lo, key), allow_zero=True)
    _positive("loss.huber_delta", lo.huber_delta)
    for z, w in lo.element_weights.items():
        _element(z, "loss.element_weights")
        if not _type_ok(w, float) or w < 0:
            raise ConfigError(f"loss.element_weights.{z} must be a number >= 0, got {w!r}")
    for tag, w in lo.tag_weights.items():
        if not isinstance(tag, int) or isinstance(tag, bool):
            raise ConfigError(f"loss.tag_weights: tags are integers (0, 1, 2), got {tag!r}")
        if not _type_ok(w, float) or w < 0:
            raise ConfigError(f"loss.tag_weights.{tag} must be a number >= 0, got {w!r}")
    _positive("optim.lr", o.lr)
    _positive("optim.weight_decay", o.weight_decay, allow_zero=True)
    _positive("optim.warmup_steps", o.warmup_steps, allow_zero=True)
    _positive("optim.grad_clip", o.grad_clip, allow_zero=True)
    if not 0 <= o.ema_decay < 1:
        raise ConfigError(f"optim.ema_decay must be in [0, 1), got {o.ema_decay}")
    if not 0 < o.plateau_factor < 1:
        raise ConfigError(f"optim.plateau_factor must be in (0, 1), got {o.plateau_factor}")
    if not 0 <= o.min_lr_ratio <= 1:
        raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {o.min_lr_ratio}")
    _positive("run.epochs", r.epochs)
    _positive("run.max_time", r.max_time)
    if r.fit_to_time and r.max_time is None:
        raise ConfigError("run.fit_to_time needs a time budget: set run.max_time (or --max-time)")
    _positive("run.patience", r.patience)
    _positive("run.log_every", r.log_every)
    _positive("run.checkpoint_every", r.checkpoint_every, allow_zero=True)
    if r.bf16 and r.device == "cpu":
        raise ConfigError("run.bf16 needs a GPU; bf16 autocast is not used on the CPU")
    if r.kernels == "compile":
        # Found by running it: AOT autograd refuses the second backward that force training does.
        raise ConfigError("run.kernels 'compile' cannot train: torch.compile does not support the "
                          "double backward that training on forces needs; set run.compile: true "
                          "instead, which traces the forces into the graph first ('compile' "
                          "kernels are for inference: model.set_kernel_backend)")
    if r.compile and r.bf16:
        raise ConfigError("run.compile and run.bf16 together are not supported: bf16 autocast "
                          "is not traced into the compiled graph")
    for section, e0 in (("data.e0", d.e0), ("finetune.e0", f.e0)):
        if isinstance(e0, dict):
            for z, v in e0.items():
                _element(z, section)
                if not _type_ok(v, float):
                    raise ConfigError(f"{section}.{z} must be a number (eV), got {v!r}")
    if isinstance(f.e0, str) and f.e0 not in ("keep", "refit"):
        raise ConfigError(f"finetune.e0 must be 'keep', 'refit' or a mapping, got {f.e0!r}")
    q = config.equivariance
    _positive("equivariance.transip_weight", q.transip_weight, allow_zero=True)
    _positive("equivariance.transip_hidden", q.transip_hidden)
    _positive("equivariance.regularizer_weight", q.regularizer_weight, allow_zero=True)
    _positive("equivariance.regularizer_energy_weight", q.regularizer_energy_weight,
              allow_zero=True)
    if f.checkpoint is not None and config.model.hyperparameters:
        raise ConfigError("model.hyperparameters cannot be changed when fine-tuning "
                          "(finetune.checkpoint gives the model)")
    return config


def _element(z, where) -> int:
    from ase.data import atomic_numbers

    if isinstance(z, str) and z in atomic_numbers:
        return atomic_numbers[z]
    if isinstance(z, int) and not isinstance(z, bool) and 1 <= z <= 118:
        return z
    raise ConfigError(f"{where}: {z!r} is not an element (atomic number or symbol)")


def element_map(mapping: dict, where: str) -> dict[int, float]:
    """``{Z or symbol: value}`` -> ``{Z: float}``."""
    return {_element(z, where): float(v) for z, v in mapping.items()}


def parse_override(text: str) -> tuple[list[str], object]:
    """``section.key=value`` -> (["section", "key"], value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    path = key.strip().split(".")
    if len(path) < 2:
        raise ConfigError(f"--set {text!r}: name a section and a key, e.g. optim.lr=1e-3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse {raw!r}: {err}") from None
    return path, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy in plain types
    for text in overrides or []:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part} is not a section")
        node[path[-1]] = value
    return raw


def config_from_dict(raw: dict, overrides: list[str] | None = None) -> TrainConfig:
    """Build and validate a config from a mapping, after ``--set`` style overrides."""
    raw = apply_overrides(raw or {}, overrides or [])
    return validate(_build(TrainConfig, raw, ""))


def load_config(path, overrides: list[str] | None = None) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    try:
        return config_from_dict(raw, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def as_config(config, overrides: list[str] | None = None) -> TrainConfig:
    """A path, a mapping or a TrainConfig (overrides applied in each case)."""
    if isinstance(config, TrainConfig):
        return config_from_dict(config.to_dict(), overrides) if overrides else validate(config)
    if isinstance(config, dict):
        return config_from_dict(config, overrides)
    return load_config(config, overrides)


def save_config(config: TrainConfig, path) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))

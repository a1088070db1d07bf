"""Options shared by the verbs that run a model on structures: --charge and --spin, and
argument types that refuse impossible numbers at the command line, naming the option."""

from __future__ import annotations

import argparse
import math


def number(kind=float, minimum=None, strict=False, unit=""):
    """An argparse type: ``kind`` parsed, finite, and >= ``minimum`` (> with ``strict``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            bound = f"{'>' if strict else '>='} {minimum}{' ' + unit if unit else ''}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def limit(text: str) -> float | bool:
    """A watchdog limit: a number, or 'none'/'off' for False (off; None is the default)."""
    if text.strip().lower() in ("none", "off"):
        return False
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def limit_value(value):
    """A parsed :func:`limit` as the library takes it: None where the user turned it off."""
    return None if value is False else value


def add_device_dtype(p) -> None:
    """--device and --dtype of every verb that runs a model."""
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "float64"],
        help="run the model in this dtype (default: the checkpoint's)",
    )


def add_charge_spin(p) -> None:
    p.add_argument(
        "--charge",
        type=float,
        default=None,
        metavar="E",
        help="total charge (e) of structures without atoms.info['charge'] (a "
        "structure's own value wins); only for models with charge/spin conditioning",
    )
    p.add_argument(
        "--spin",
        type=float,
        default=None,
        metavar="2S+1",
        help="spin multiplicity 2S+1 of structures without atoms.info['spin'] (a "
        "structure's own value wins); only for models with charge/spin conditioning",
    )


def check_charge_spin(args, model, name) -> dict:
    """The defaults asked for, refused for a model that would ignore them."""
    given = {k: getattr(args, k, None) for k in ("charge", "spin")}
    given = {k: v for k, v in given.items() if v is not None}
    if given and not getattr(model, "uses_charge_spin", False):
        option = "/".join(f"--{k}" for k in given)
        raise ValueError(
            f"model {name} was trained without charge/spin conditioning; {option} has no effect"
        )
    if "spin" in given and given["spin"] < 1:
        raise ValueError(f"--spin is the multiplicity 2S+1 (>= 1), got {given['spin']:g}")
    return given


def calculator_and_structure(args, read: bool = True):
    """The verb's MLIPCalculator and (with ``read``) its structure, given --charge/--spin
    where the structure lacks them; the options are refused for a model that ignores them."""
    from ..calculator import MLIPCalculator
    from ..simulate import read_structure

    calc = MLIPCalculator(args.model, device=args.device, dtype=args.dtype)
    defaults = check_charge_spin(args, calc.model, args.model)
    if not read:
        return calc, None
    atoms = read_structure(args.structure, index=int(args.index))
    for key, value in defaults.items():  # a structure's own values win
        atoms.info.setdefault(key, float(value))
    return calc, atoms

"""``mlip info MODEL``: what a checkpoint holds."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="show a checkpoint's model, elements, E0 and training summary",
        description="Print what the checkpoint MODEL holds: model and preset, elements, E0 per "
        "element, scale, whether forces are conservative (-dE/dr) or a direct head, "
        "hyperparameters, package versions and the training summary. Nothing is built or run.",
    )
    p.add_argument("model", metavar="MODEL", help="checkpoint file (.pt)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def checkpoint_info(path) -> dict:
    from ase.data import chemical_symbols

    from ..models.registry import read_checkpoint

    ckpt = read_checkpoint(path)
    training = dict(ckpt.get("training") or {})
    elements = [chemical_symbols[int(z)] for z in ckpt["state_dict"]["elements"].tolist()]
    n_params = sum(v.numel() for k, v in ckpt["state_dict"].items()
                   if v.is_floating_point() and k not in ("e0", "scale"))
    return {
        "path": str(path),
        "model": ckpt["model"],
        "preset": ckpt.get("preset"),
        "elements": elements,
        "e0_eV": {chemical_symbols[int(z)]: v for z, v in (ckpt.get("e0") or {}).items()},
        "scale": ckpt.get("scale"),
        "conservative": ckpt.get("conservative", True),
        "hyperparameters": ckpt["hyperparameters"],
        "tensor_values": n_params,
        "units": ckpt.get("units"),
        "versions": ckpt.get("versions"),
        "resumable": "train_state" in ckpt,
        "training": {k: v for k, v in training.items() if k != "config"},
    }


def run(args) -> int:
    info = checkpoint_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    forces = "conservative (-dE/dr)" if info["conservative"] else "DIRECT head (not conservative)"
    print(f"checkpoint    {info['path']}")
    print(f"model         {info['model']}" + (f" (preset {info['preset']})" if info["preset"]
                                              else ""))
    print(f"elements      {' '.join(info['elements'])}")
    print(f"forces        {forces}")
    print("E0 (eV)       " + ", ".join(f"{s} {v:.6f}" for s, v in info["e0_eV"].items()))
    print(f"scale         {info['scale']}")
    print(f"weights       {info['tensor_values']} values (parameters and buffers)")
    print("hyperparameters")
    for k, v in info["hyperparameters"].items():
        print(f"  {k}: {v}")
    t = info["training"]
    if t:
        print("training")
        for k in ("status", "epoch", "step", "best_epoch"):
            if k in t:
                print(f"  {k}: {t[k]}")
        for k, v in (t.get("valid") or {}).items():
            print(f"  valid {k}: {1000 * v:.3f} meV units")
        for k, v in (t.get("data") or {}).items():
            print(f"  {k}: {v}")
    print(f"versions      {info['versions']}")
    return 0

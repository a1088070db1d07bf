"""``mlip info MODEL``: what a checkpoint holds.

A checkpoint is read without importing torch (the import alone takes longer than the answer
should): :func:`peek` reads torch's zip format with an unpickler that knows only tensors,
storages and ordered dicts, the same closed set ``torch.load(weights_only=True)`` accepts for
these files. Anything else sends the file to torch's reader, which names what is wrong.
"""

from __future__ import annotations

import argparse
import json
import pickle
import zipfile


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="show a checkpoint's model, elements, E0 and training summary",
        description="Print what the checkpoint MODEL holds: model and preset, elements, E0 per "
        "element, scale, whether forces are conservative (-dE/dr) or a direct head, "
        "hyperparameters, package versions and the training summary. Nothing is built or run.",
    )
    p.add_argument("model", metavar="MODEL",
                   help="checkpoint file (.pt) or pretrained model name (its card is printed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


_ITEMSIZE = {
    "Double": 8,
    "Float": 4,
    "Half": 2,
    "BFloat16": 2,
    "Long": 8,
    "Int": 4,
    "Short": 2,
    "Char": 1,
    "Byte": 1,
    "Bool": 1,
}
_FLOAT = ("Double", "Float", "Half", "BFloat16")


class _Tensor:
    """What ``mlip info`` asks of a tensor: its kind, size and (small integer ones) values."""

    def __init__(self, kind, data: bytes, offset, size):
        self.kind, self.data, self.offset, self.shape = kind, data, offset, tuple(size)

    def __repr__(self) -> str:
        return f"tensor({self.kind}, shape={list(self.shape)})"

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def is_floating_point(self) -> bool:
        return self.kind in _FLOAT

    def tolist(self) -> list:
        import numpy as np

        if self.kind not in ("Long", "Int") or len(self.shape) != 1 or self.data is None:
            raise _Unknown(f"tolist of a {self.kind} tensor of shape {self.shape}")
        dtype = np.dtype("<i8" if self.kind == "Long" else "<i4")
        return np.frombuffer(self.data, dtype, self.numel(), self.offset * dtype.itemsize).tolist()


class _Unknown(Exception):
    pass


def _rebuild_tensor(storage, offset, size, stride, *rest):
    kind, data = storage
    return _Tensor(kind, data, offset, size)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name.endswith("Storage") and name[:-7] in _ITEMSIZE:
            return name[:-7]
        raise _Unknown(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise _Unknown(f"persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if kind not in _ITEMSIZE:
            raise _Unknown(f"storage {kind!r}")
        # Only small integer tensors (elements) are ever read; the weights stay in the file.
        data = self.archive.read(f"{self.prefix}/data/{key}") if numel <= 1024 else None
        return kind, data


def peek(path) -> dict | None:
    """The checkpoint as a dict with light tensors, or None where torch must read it."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pkl) != 1 or archive.read(pkl[0][:-8] + "byteorder") != b"little":
                return None
            with archive.open(pkl[0]) as f:
                ckpt = _Unpickler(f, archive, pkl[0][:-9]).load()
    except (
        _Unknown,
        zipfile.BadZipFile,
        KeyError,
        OSError,
        pickle.UnpicklingError,
        TypeError,
        ValueError,
        EOFError,
        AttributeError,
    ):
        return None
    required = ("format_version", "model", "hyperparameters", "state_dict")
    if (
        not isinstance(ckpt, dict)
        or any(k not in ckpt for k in required)
        or not isinstance(ckpt["state_dict"], dict)
    ):
        return None
    return ckpt


def checkpoint_info(path) -> dict:
    from ase.data import chemical_symbols

    ckpt = peek(path)
    if ckpt is None:  # torch reads it, or says why it cannot
        from ..models.registry import read_checkpoint

        ckpt = read_checkpoint(path)
    training = dict(ckpt.get("training") or {})
    elements = [chemical_symbols[int(z)] for z in ckpt["state_dict"]["elements"].tolist()]
    n_params = sum(
        v.numel()
        for k, v in ckpt["state_dict"].items()
        if v.is_floating_point() and k not in ("e0", "scale")
    )
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
    from ..pretrained import format_card, model_card, resolve_model

    path = resolve_model(args.model)
    card = model_card(args.model) if str(path) != args.model else None
    info = checkpoint_info(path)
    if args.json:
        print(json.dumps({**info, "card": card} if card else info, indent=2, default=str))
        return 0
    if card:
        print(format_card(card))
        print()
    forces = "conservative (-dE/dr)" if info["conservative"] else "DIRECT head (not conservative)"
    print(f"checkpoint    {info['path']}")
    print(
        f"model         {info['model']}" + (f" (preset {info['preset']})" if info["preset"] else "")
    )
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

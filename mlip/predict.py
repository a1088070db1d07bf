"""Batch prediction over structure files, written to extxyz or HDF5 all at once or not at all."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from ._io import atomic_path
from .data import keys as K
from .data.graph import frame_to_atoms, frame_to_graph, input_frame
from .data.readers import DataError, read_frames
from .inference import ase_results, run_batch

log = logging.getLogger("mlip.predict")


class _Batcher:
    """Runs the model on batches of graphs; a batch that fails is retried one by one, so one
    bad structure costs only itself."""

    def __init__(self, model, device, max_atoms):
        self.model, self.device, self.max_atoms = model, device, max_atoms
        self.pending: list[tuple[dict, dict]] = []  # (frame, graph)
        self.atoms = 0

    def add(self, frame, graph) -> list:
        self.pending.append((frame, graph))
        self.atoms += len(frame[K.POSITIONS])
        return self.flush() if self.atoms >= self.max_atoms else []

    def flush(self) -> list:
        items, self.pending, self.atoms = self.pending, [], 0
        if not items:
            return []
        try:
            return list(zip([f for f, _ in items], self._run([g for _, g in items])))
        except Exception:
            if len(items) == 1:
                raise
        out = []
        for frame, graph in items:
            try:
                out.append((frame, self._run([graph])[0]))
            except Exception as err:  # reported by name, the others go on
                out.append((frame, err))
        return out

    def _run(self, graphs) -> list:
        # What mlip predict writes: energy, forces and (periodic structures) stress.
        return [
            {k: v for k, v in ase_results(r).items() if k in ("energy", "forces", "stress")}
            for r in run_batch(self.model, graphs, device=self.device)
        ]


def predict_files(
    model,
    inputs,
    output,
    format: str | None = None,
    max_atoms: int = 2048,
    device=None,
    dtype=None,
    overwrite: bool = False,
    progress: bool = False,
    neighbors: str = "vesin",
    charge: float | None = None,
    spin: float | None = None,
) -> dict:
    """Predict every structure of ``inputs``; write them with their results to ``output``
    (extxyz, or HDF5 for ``.h5``). Returns a summary with the structures that failed, each
    named ``file:frame: reason``. ``charge`` and ``spin`` (multiplicity) are given to the
    structures that lack them, for a model with charge/spin conditioning only.

    One model call per batch computes energy, forces and (periodic structures) stress."""
    import ase.io
    from tqdm import tqdm

    from .models.registry import load_model

    output = str(output)
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it")
    h5 = Path(output).suffix.lower() in (".h5", ".hdf5")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name = str(model) if isinstance(model, str | Path) else type(model).__name__
    model = (
        load_model(model, device=device, dtype=dtype)
        if isinstance(model, str | Path)
        else model.to(device).eval()
    )
    defaults = {k: v for k, v in ((K.CHARGE, charge), (K.SPIN, spin)) if v is not None}
    if defaults and not getattr(model, "uses_charge_spin", False):
        option = "/".join(f"--{k}" for k in defaults)
        raise ValueError(
            f"model {name} was trained without charge/spin conditioning; {option} has no effect"
        )
    supported = model.elements.tolist()
    batcher = _Batcher(model, device, max_atoms)
    failed, n_written, bad_records = [], 0, 0
    bar = tqdm(desc="predict", unit="structure", disable=not progress)
    target = output + ".extxyz" if h5 else output
    with atomic_path(target) as tmp, open(tmp, "w") as f:

        def write(done):
            nonlocal n_written
            for frame, result in done:
                if isinstance(result, Exception):
                    failed.append(f"{frame.get('name', '?')}: {result}")
                    continue
                ase.io.write(f, frame_to_atoms(input_frame(frame), result), format="extxyz")
                n_written += 1
                bar.update(1)

        for path in inputs:
            # Every bad structure is skipped and reported and the rest written: the bad-fraction
            # limit protects a training set, not a file of structures to predict.
            stream = read_frames(str(path), format=format, max_bad_fraction=1.0)
            for i, frame in enumerate(stream):
                frame.setdefault("name", f"{path}:{i}")
                for key, value in defaults.items():  # a structure's own values win
                    frame.setdefault(key, np.float64(value))
                frame = input_frame(frame)
                try:
                    graph = frame_to_graph(frame, model.cutoff, neighbors, supported=supported)
                except Exception as err:  # a structure the model cannot take: report, go on
                    failed.append(f"{frame['name']}: {err}")
                    continue
                write(batcher.add(frame, graph))
            bad_records += getattr(stream, "n_bad", 0)
            failed.extend(getattr(stream, "bad", []))
        write(batcher.flush())
        bar.close()
        f.flush()
        if n_written == 0:
            raise DataError(
                "no structure could be predicted"
                + (f"; first failure: {failed[0]}" if failed else "")
            )
    if h5:
        from .data.hdf5 import convert

        try:
            convert([target], output, format="extxyz", overwrite=overwrite)
        finally:
            Path(target).unlink(missing_ok=True)
    return {"output": output, "structures": n_written, "failed": failed, "bad_records": bad_records}

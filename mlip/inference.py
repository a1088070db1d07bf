"""One prediction path: structures -> graphs -> one model call per batch -> results per structure.

The ASE calculator, :func:`mlip.predict_batched`, ``mlip predict`` and the physics contract all
call :func:`run_batch`, so one place decides which structures get a stress and how a batch's
outputs are split back into its structures. Results are float64 numpy arrays under the graph
keys (:mod:`mlip.data.keys`); :func:`ase_results` renames them for ASE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data import keys as K
from .data.graph import atoms_to_frame, batch_graphs, frame_to_graph, input_frame, matrix_to_voigt
from .data.graph import to as to_device


def structure_graph(
    atoms,
    model,
    neighbors: str = "vesin",
    name: str | None = None,
    supported: Sequence[int] | None = None,
) -> dict:
    """The model's input graph of an ASE structure: its results from an earlier calculator are
    dropped (they are not inputs), its elements checked against the model's."""
    frame = input_frame(atoms_to_frame(atoms, name=name))
    if supported is None:
        supported = model.elements.tolist()
    return frame_to_graph(frame, model.cutoff, neighbors, supported=supported)


def model_batch(model, graphs: Sequence[dict], device: torch.device | None = None) -> dict:
    """The graphs as one batch on ``device`` (default: the model's), ready for the model."""
    # A graph of one structure is already a batch of one: the calculator's path (every MD step)
    # skips the copy that batching would make.
    batch = graphs[0] if len(graphs) == 1 else batch_graphs(list(graphs), common_keys=True)
    device = device if device is not None else next(model.buffers()).device
    return to_device(batch, device)


def run_batch(
    model,
    graphs: Sequence[dict],
    stress: bool | str = "periodic",
    device: torch.device | None = None,
) -> list[dict]:
    """Energy, per-atom energies and forces of every graph (and stress) from one model call.

    ``stress``: ``"periodic"`` gives a stress to each structure periodic in all three
    directions, computed in the same call when any is (the calculator's and ``predict``'s
    rule); ``True`` computes it for every structure (the contract's strain checks); ``False``
    never."""
    batch = model_batch(model, graphs, device)
    periodic = batch[K.PBC].all(dim=1).tolist()
    if stress == "periodic":
        compute, keep = any(periodic), periodic
    else:
        compute, keep = bool(stress), [bool(stress)] * len(periodic)
    out = model(batch, compute_forces=True, compute_stress=compute)
    return split_outputs(out, batch[K.NUM_ATOMS].tolist(), keep)


def split_outputs(
    out: dict[str, torch.Tensor], counts: Sequence[int], keep_stress: Sequence[bool]
) -> list[dict]:
    """A batch's model outputs as one dict of float64 arrays per structure."""

    def numpy(t):
        return t.detach().cpu().double().numpy()

    energy, node, forces = numpy(out[K.ENERGY]), numpy(out[K.NODE_ENERGY]), numpy(out[K.FORCES])
    stress = numpy(out[K.STRESS]) if K.STRESS in out else None
    starts = np.cumsum([0, *counts])
    results = []
    for b in range(len(counts)):
        atoms = slice(starts[b], starts[b + 1])
        r = {K.ENERGY: energy[b], K.NODE_ENERGY: node[atoms].copy(), K.FORCES: forces[atoms].copy()}
        if stress is not None and keep_stress[b]:
            r[K.STRESS] = stress[b].copy()
        results.append(r)
    return results


def ase_results(r: dict) -> dict:
    """One structure's results under ASE's names (stress in Voigt order, ASE's sign)."""
    out = {
        "energy": float(r[K.ENERGY]),
        "free_energy": float(r[K.ENERGY]),
        "forces": r[K.FORCES],
        "energies": r[K.NODE_ENERGY],
    }
    if K.STRESS in r:
        out["stress"] = matrix_to_voigt(r[K.STRESS])
    return out

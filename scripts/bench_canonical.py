"""Cost of exact symmetry for the Transformer: plain, canonical and frame-averaged, side by side.

All three are ``transformer-s`` (the canonicalized one with ``symmetry="canonical"``, the
frame-averaged one the plain model wrapped in ``FrameAveraged``), timed in this process on the
same prebuilt graphs, calls interleaved round-robin so that a change of load on the machine hits
all of them alike. Per system: the median time of one energy+forces call (eval mode; stress too
for the periodic cell) and of one training step (energy+forces with create_graph, a force loss,
backward), and each model's time relative to the plain Transformer's. Times are this process's
CPU time (``time.process_time``, one torch thread): on a shared machine, wall time also counts
the time the process waits for a core.

    python scripts/bench_canonical.py --dtype float32 --repeats 20

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import ase.io
import torch
from ase.build import bulk

import mlip
from mlip.data.graph import batch_graphs, from_ase
from mlip.models.frame_averaging import FrameAveraged

CUTOFF = 5.0
ELEMENTS = [1, 6, 8, 29]
ACAC = Path(__file__).resolve().parents[1] / "datasets" / "acac" / "test_MD_300K.xyz"


def systems() -> dict[str, list]:
    acac = ase.io.read(ACAC, index=":5")
    cu = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
    cu.rattle(0.05, seed=0)
    return {
        "acac (15 atoms)": acac[:1],
        "acac x5 (75 atoms, a training batch)": acac,
        "Cu fcc 3x3x3 (108 atoms, periodic)": [cu],
    }


def models(dtype: str) -> dict[str, torch.nn.Module]:
    def build(**extra):
        torch.manual_seed(0)
        return mlip.build_model(
            "transformer-s", cutoff=CUTOFF, elements=ELEMENTS, dtype=dtype, **extra
        )

    plain = build()
    return {
        "transformer-s": plain,
        "canonical (O3)": build(symmetry="canonical"),
        "canonical (SO3)": build(symmetry="canonical", canonical={"group": "SO3"}),
        "frame-averaged (O3)": FrameAveraged(plain),
    }


def runner(model, graph, train: bool, stress: bool):
    def infer():
        model.eval()
        model(graph, compute_forces=True, compute_stress=stress)

    def step():
        model.train()
        out = model(graph, compute_forces=True, create_graph=True)
        out["forces"].square().mean().backward()
        model.zero_grad(set_to_none=True)

    return step if train else infer


def bench(dtype: str, repeats: int, warmup: int = 2) -> list[tuple]:
    rows = []
    built = models(dtype)
    for system, structures in systems().items():
        graph = batch_graphs([from_ase(a, CUTOFF) for a in structures])
        stress = bool(structures[0].pbc.all())
        for train in (False, True):
            runs = {name: runner(m, graph, train, stress) for name, m in built.items()}
            times = {name: [] for name in runs}
            for i in range(warmup + repeats):
                for name, run in runs.items():
                    t0 = time.process_time()
                    run()
                    if i >= warmup:
                        times[name].append(time.process_time() - t0)
            base = statistics.median(times["transformer-s"])
            for name, t in times.items():
                med = statistics.median(t)
                rows.append((system, "train step" if train else "E+F", name, med, med / base))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = bench(args.dtype, args.repeats)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.dtype}, {args.threads} thread(s), load average {os.getloadavg()[0]:.1f}, "
        f"median of {args.repeats}"
    )
    print("| system | call | model | CPU time (ms) | vs transformer-s |")
    print("| --- | --- | --- | --- | --- |")
    for system, call, name, t, ratio in rows:
        print(f"| {system} | {call} | {name} | {1e3 * t:.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()

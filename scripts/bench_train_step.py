"""The cost of one training step on CPU: with and without mlip's allocator settings, or eager
against ``run.compile`` (the step traced and compiled, mlip/train/compiled.py).

A step is what the trainer does per batch: energy, forces by autograd with ``create_graph``,
and the backward pass of an energy + forces loss. Each setting runs in its own process
(``mlip._malloc`` changes the process's allocator for good), one after the other, one thread
each; the script prints a markdown table with the time per step, the system time and the
page faults of each process. ``--compare compile`` times the two steps on batches with
different edge counts (the compiled graph is traced once, with symbolic sizes) and reports
the one-off trace and compile time.

    python scripts/bench_train_step.py --model facet-s --molecules 5
    python scripts/bench_train_step.py --model facet-s --set correlation=2
    python scripts/bench_train_step.py --model facet-acc --molecules 3 --compare compile
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> dict:
    import resource

    import torch
    from ase.io import read

    from mlip._malloc import tune_malloc
    from mlip.data import batch_graphs, from_ase
    from mlip.models.registry import build_model

    tuned = tune_malloc()
    torch.set_num_threads(1)
    hyper = {"pair_repulsion": True, "dtype": args.dtype}
    for item in args.set:
        key, value = item.split("=", 1)
        hyper[key] = json.loads(value)
    # Batches of consecutive frames: the same atom count, different edges, as in training.
    frames = read(args.data, f":{args.molecules * 4}")
    m = args.molecules
    graphs = [batch_graphs([from_ase(atoms, cutoff=args.cutoff) for atoms in frames[i:i + m]])
              for i in range(0, len(frames), m)]
    model = build_model(args.model, **hyper).train()
    forward = model
    if args.compiled:
        from mlip.train.compiled import CompiledPotential

        forward = CompiledPotential(model)
    batches = itertools.cycle(graphs)

    def step():
        out = forward(next(batches))
        loss = out["energy"].pow(2).sum() + out["forces"].pow(2).sum()
        loss.backward()

    t0 = time.perf_counter()
    step()  # the compiled step traces and compiles here
    first = time.perf_counter() - t0
    for _ in range(args.warmup):
        step()
    start = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = time.perf_counter() - t0
    end = resource.getrusage(resource.RUSAGE_SELF)
    return {"tuned": tuned, "compiled": args.compiled, "first_step_s": first,
            "ms_per_step": 1e3 * seconds / args.steps,
            "sys_ms_per_step": 1e3 * (end.ru_stime - start.ru_stime) / args.steps,
            "faults_per_step": (end.ru_minflt - start.ru_minflt) / args.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facet-s")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="a model hyperparameter, e.g. correlation=2")
    parser.add_argument("--data", default=str(ROOT / "datasets/acac/train_300K.xyz"))
    parser.add_argument("--molecules", type=int, default=5, help="structures per batch")
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compare", choices=("allocator", "compile"), default="allocator",
                        help="glibc against mlip's allocator settings, or eager against "
                        "run.compile (both with mlip's settings)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    rows = []
    settings = ([("0", []), ("1", [])] if args.compare == "allocator"
                else [("1", []), ("1", ["--compiled"])])
    for tuning, extra in settings:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
        env.update(MLIP_MALLOC_TUNING=tuning, OMP_NUM_THREADS="1",
                   TORCHINDUCTOR_COMPILE_THREADS="1")
        out = subprocess.run([sys.executable, __file__, "--worker", *extra, *sys.argv[1:]],
                             env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    name = " ".join([args.model, *args.set])
    print(f"{name}: {args.molecules} structures of {Path(args.data).name} per step, "
          f"{args.dtype}, one thread; {platform.processor() or platform.machine()}")
    if args.compare == "compile":
        print("\n| step | ms per step | first step (s) |")
        print("|---|---|---|")
        for row in rows:
            name = "run.compile" if row["compiled"] else "eager"
            print(f"| {name} | {row['ms_per_step']:.0f} | {row['first_step_s']:.1f} |")
        print(f"\nspeed-up: {rows[0]['ms_per_step'] / rows[1]['ms_per_step']:.2f}x")
        return
    print("\n| allocator | ms per step | system ms per step | page faults per step |")
    print("|---|---|---|---|")
    for row in rows:
        name = "mlip's settings" if row["tuned"] else "glibc defaults"
        print(f"| {name} | {row['ms_per_step']:.0f} | {row['sys_ms_per_step']:.0f} "
              f"| {row['faults_per_step']:.0f} |")
    print(f"\nspeed-up: {rows[0]['ms_per_step'] / rows[1]['ms_per_step']:.2f}x")


if __name__ == "__main__":
    main()

"""Accuracy at equal wall time: an mlip training run beside mace-torch's MACE on the same data.

Both train on one thread each, side by side (one per core), from the same extxyz file with the
same 10% validation fraction, and are tested on the same test file; the script prints a
markdown table of the wall time, epochs and test errors of each. mlip fits its epochs and cosine
schedule to ``--time`` (``run.fit_to_time``); MACE has no time budget, so it runs
``--mace-epochs`` epochs with its published recipe (AMSGrad lr 0.01, EMA 0.99, forces weight
1000, the SWA stage for the last quarter) and its wall time is reported: pick the epochs from a
one-epoch probe so that it finishes near ``--time``.

mace-torch pins e3nn 0.4.4, which mlip's e3nn does not share, so MACE runs from its own
environment (``--mace-python``):

    python3 -m venv /tmp/macevenv && /tmp/macevenv/bin/pip install torch==2.13.0 \
        && /tmp/macevenv/bin/pip install mace-torch "e3nn==0.4.4"
    python scripts/train_vs_mace.py --time 4200 --mace-epochs 100 \
        --mace-python /tmp/macevenv/bin/python --out runs/vs-mace
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ase.io import read

from mlip.train.checkpoint import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets/acac"


def mlip_command(args, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "mlip", "train", str(args.config),
           "--set", "run.epochs=100000", "--set", "run.fit_to_time=true",
           "--set", f"run.max_time={args.time}", "--set", f"run.run_dir={out / 'mlip'}"]
    for item in args.set:
        cmd += ["--set", item]
    return cmd


def mace_command(args, out: Path) -> list[str]:
    e0s = {int(a.numbers[0]): float(a.get_potential_energy()) for a in read(args.isolated, ":")}
    swa = max(1, int(0.75 * args.mace_epochs))
    # MACE reloads its stage-one checkpoint at the end; it writes one per evaluation interval.
    interval = 5 if args.mace_epochs >= 10 else 1
    return [
        args.mace_python, "-m", "mace.cli.run_train", "--name", "mace", "--seed", "0",
        "--work_dir", str(out / "mace"), "--train_file", str(args.train),
        "--valid_fraction", "0.1", "--test_file", str(args.test), "--E0s", repr(e0s),
        "--energy_key", "energy", "--forces_key", "forces", "--model", "MACE",
        "--hidden_irreps", args.mace_hidden, "--r_max", "5.0", "--max_ell", "3",
        "--correlation", "3", "--num_interactions", "2", "--batch_size", "5",
        "--valid_batch_size", "10", "--max_num_epochs", str(args.mace_epochs),
        "--lr", "0.01", "--amsgrad", "--ema", "--ema_decay", "0.99",
        "--energy_weight", "1", "--forces_weight", "1000", "--swa", "--start_swa", str(swa),
        "--swa_energy_weight", "1000", "--swa_forces_weight", "100",
        "--default_dtype", "float32", "--device", "cpu", "--eval_interval", str(interval),
        "--error_table", "PerAtomRMSE", "--num_workers", "0",
    ]


def mace_test_errors(log_dir: Path) -> dict:
    """The last 'Error-table on TEST' of MACE's log: energy RMSE per atom, force RMSE (meV)."""
    logs = sorted(log_dir.glob("*.log"))
    if not logs:
        raise RuntimeError(f"no MACE log under {log_dir}")
    text = logs[0].read_text().split("Error-table on TEST:")
    if len(text) < 2:
        raise RuntimeError(f"{logs[0]} has no test error table: did MACE finish?")
    header, row = None, None
    for line in text[-1].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.lstrip().startswith("|"):
            continue
        if header is None:
            header = cells
        else:
            row = cells
            break
    if row is None:
        raise RuntimeError(f"could not parse the test error table of {logs[0]}")
    values = dict(zip(header, row))
    energy = next(v for k, v in values.items() if re.match(r"RMSE E", k))
    forces = next(v for k, v in values.items() if re.match(r"RMSE F", k))
    return {"energy_rmse_mev_per_atom": float(energy), "forces_rmse_mev_per_a": float(forces)}


def mlip_test_errors(run_dir: Path, test: Path) -> dict:
    """The run's own test metrics, or (a run cut by its time limit has none) `mlip eval`'s."""
    path = run_dir / "test_metrics.json"
    if path.exists():
        metrics = json.loads(path.read_text())
    else:
        out = subprocess.run([sys.executable, "-m", "mlip", "eval", str(run_dir / "best.pt"),
                              str(test), "--json"], capture_output=True, text=True, check=True)
        metrics = json.loads(out.stdout)
    return {"energy_rmse_mev_per_atom": 1e3 * metrics["energy_rmse"],
            "forces_rmse_mev_per_a": 1e3 * metrics["forces_rmse"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/acac-facet-s-long.yaml",
                        help="the mlip training config (its data section should match --train)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override for the mlip run, as for `mlip train --set`")
    parser.add_argument("--time", type=float, default=4200, help="mlip's training seconds")
    parser.add_argument("--mace-epochs", type=int, default=100)
    parser.add_argument("--mace-hidden", default="64x0e+64x1o")
    parser.add_argument("--mace-python", required=True, help="python of the mace-torch venv")
    parser.add_argument("--train", type=Path, default=DATA / "train_300K.xyz")
    parser.add_argument("--test", type=Path, default=DATA / "test_MD_300K.xyz")
    parser.add_argument("--isolated", type=Path, default=DATA / "isolated_atoms.xyz")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/vs-mace")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    jobs, rows = {}, {"mlip": {}, "mace": {}}
    start = time.perf_counter()
    for name, cmd in (("mlip", mlip_command(args, args.out)),
                      ("mace", mace_command(args, args.out))):
        log = open(args.out / f"{name}.out", "w")
        jobs[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    while jobs:  # poll, so each wall time ends when its own process does
        for name, (proc, log) in list(jobs.items()):
            if proc.poll() is None:
                continue
            log.close()
            del jobs[name]
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed (exit {proc.returncode}); see {log.name}")
            rows[name]["wall_s"] = time.perf_counter() - start
        time.sleep(1.0)
    rows["mlip"].update(mlip_test_errors(args.out / "mlip", args.test))
    rows["mace"].update(mace_test_errors(args.out / "mace" / "logs"))
    print(f"\nTest set {args.test.name}; one thread each, side by side.\n")
    print("| model | wall time incl. testing (min) | energy RMSE (meV/atom) | force RMSE (meV/Å) |")
    print("|---|---|---|---|")
    labels = {"mlip": f"mlip ({args.config.name})", "mace": f"MACE {args.mace_hidden}, "
              f"L=3, correlation 3, {args.mace_epochs} epochs"}
    for name, row in rows.items():
        print(f"| {labels[name]} | {row['wall_s'] / 60:.0f} | "
              f"{row['energy_rmse_mev_per_atom']:.2f} | {row['forces_rmse_mev_per_a']:.1f} |")
    atomic_write_text(args.out / "summary.json", json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

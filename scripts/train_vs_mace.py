"""Accuracy at equal wall time: an mlip training run beside mace-torch's MACE on the same data.

Both train on one thread each, side by side (one per core), from the same extxyz file with the
same 10% validation fraction, and are tested on the same test file; the script prints a
markdown table of the wall time, epochs and test errors of each. mlip fits its epochs and cosine
schedule to ``--time`` (``run.fit_to_time``); MACE has no time budget, so it runs
``--mace-epochs`` epochs with its published recipe (AMSGrad lr 0.01, EMA 0.99, forces weight
1000) and its wall time is reported. ``--mace-time`` gives MACE the same budget instead: it
trains until then and on to its next validation (it validates every epoch then), is stopped,
and its best checkpoint so far is tested (mace-torch's ``--restart_latest`` with no epochs
left). Without it, pick the epochs from a one-epoch probe so that MACE finishes near ``--time``;
``--mace-finalize`` tests the best checkpoint of a MACE run that was stopped by hand.

mace-torch pins e3nn 0.4.4, which mlip's e3nn does not share, so MACE runs from its own
environment (``--mace-python``):

    python3 -m venv /tmp/macevenv && /tmp/macevenv/bin/pip install torch==2.13.0 \
        && /tmp/macevenv/bin/pip install mace-torch "e3nn==0.4.4"
    python scripts/train_vs_mace.py --time 4200 --mace-epochs 100 \
        --mace-python /tmp/macevenv/bin/python --out runs/vs-mace

A config whose data section holds out a test split (``data.test_fraction``, the materials
configs) gives MACE the same split: the script writes the frames mlip trains and validates on
and the frames it tests on as extxyz (``REF_energy``, ``REF_forces``, ``REF_stress`` in ASE's
sign), fits MACE's E0s by least squares (``average``), and trains MACE on stress too when the
data has it (``--loss stress``, MACE-MP's weights unless ``--mace-weights`` says otherwise):

    python scripts/train_vs_mace.py --config configs/tial-facet-s.yaml --time 2400 \
        --mace-epochs 150 --mace-python "$(which python)" --out runs/vs-mace-tial
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

from mlip.data import frame_to_atoms
from mlip.data import keys as K
from mlip.train.checkpoint import atomic_write_text
from mlip.train.config import load_config
from mlip.train.prepare import split_data

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets/acac"


def mlip_command(args, out: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "mlip",
        "train",
        str(args.config),
        "--set",
        "run.epochs=100000",
        "--set",
        "run.fit_to_time=true",
        "--set",
        f"run.max_time={args.time}",
        "--set",
        f"run.run_dir={out / 'mlip'}",
    ]
    for item in args.set:
        cmd += ["--set", item]
    return cmd


def write_split(config_path: Path, out: Path) -> tuple[Path, Path, bool]:
    """The config's own train+valid and test frames as extxyz for MACE; whether any has stress."""
    from ase.io import write

    train, valid, test = split_data(load_config(config_path))
    stress = False

    def atoms(frame):
        nonlocal stress
        a = frame_to_atoms(frame, results={})  # MACE reads its targets under REF_ names
        a.info["REF_energy"] = float(frame[K.ENERGY])
        a.arrays["REF_forces"] = frame[K.FORCES]
        if K.STRESS in frame:
            a.info["REF_stress"] = frame[K.STRESS]
            stress = True
        return a

    paths = out / "train.xyz", out / "test.xyz"
    seen = list(train) + (list(valid) if valid is not None else [])
    for path, frames in zip(paths, (seen, list(test))):
        write(path, [atoms(f) for f in frames], format="extxyz")
    return *paths, stress


def mace_command(args, out: Path) -> list[str]:
    if args.isolated is not None:
        # only the elements of the training set: MACE's table has one row per element it sees
        present = {int(z) for a in read(args.train, ":") for z in a.numbers}
        e0s = repr(
            {
                int(a.numbers[0]): float(a.get_potential_energy())
                for a in read(args.isolated, ":")
                if int(a.numbers[0]) in present
            }
        )
    else:
        e0s = "average"  # least squares over the training set, as mlip's data.e0: fit
    energy_w, forces_w, stress_w = args.mace_weights
    swa = max(1, int(0.75 * args.mace_epochs))
    # MACE reloads its best checkpoint at the end; it writes one per evaluation interval, so a
    # run cut by --mace-time validates every epoch.
    interval = 5 if args.mace_epochs >= 10 and args.mace_time is None else 1
    return (
        [
            args.mace_python,
            "-m",
            "mace.cli.run_train",
            "--name",
            "mace",
            "--seed",
            "0",
            "--work_dir",
            str(out / "mace"),
            "--train_file",
            str(args.train),
            "--valid_fraction",
            str(args.valid_fraction),
            "--test_file",
            str(args.test),
            "--E0s",
            e0s,
            "--energy_key",
            args.energy_key,
            "--forces_key",
            args.forces_key,
            "--model",
            "MACE",
            "--hidden_irreps",
            args.mace_hidden,
            "--r_max",
            "5.0",
            "--max_ell",
            "3",
            "--correlation",
            "3",
            "--num_interactions",
            "2",
            "--batch_size",
            "5",
            "--valid_batch_size",
            "10",
            "--max_num_epochs",
            str(args.mace_epochs),
            "--lr",
            "0.01",
            "--amsgrad",
            "--ema",
            "--ema_decay",
            "0.99",
            "--energy_weight",
            str(energy_w),
            "--forces_weight",
            str(forces_w),
            "--default_dtype",
            "float32",
            "--device",
            "cpu",
            "--eval_interval",
            str(interval),
            "--num_workers",
            "0",
            "--scaling",
            args.mace_scaling,
        ]
        + (  # the SWA stage raises the energy weight 1000-fold relative to forces, as published
            [
                "--swa",
                "--start_swa",
                str(swa),
                "--swa_energy_weight",
                str(1000 * energy_w),
                "--swa_forces_weight",
                str(forces_w / 10),
            ]
            if args.mace_swa
            else []
        )
        + (
            [
                "--loss",
                "stress",
                "--compute_stress",
                "True",
                "--stress_key",
                "REF_stress",
                "--stress_weight",
                str(stress_w),
                "--swa_stress_weight",
                str(stress_w),
                "--error_table",
                "PerAtomRMSEstressvirials",
            ]
            if args.stress
            else ["--error_table", "PerAtomRMSE"]
        )
    )


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
    out = {"energy_rmse_mev_per_atom": float(energy), "forces_rmse_mev_per_a": float(forces)}
    stress = [v for k, v in values.items() if re.match(r"RMSE Stress", k)]
    if stress:
        out["stress_rmse_mev_per_a3"] = float(stress[0])
    return out


def mlip_test_errors(run_dir: Path, test: Path) -> dict:
    """The run's own test metrics, or (a run cut by its time limit has none) `mlip eval`'s."""
    path = run_dir / "test_metrics.json"
    if path.exists():
        metrics = json.loads(path.read_text())
    else:
        out = subprocess.run(
            [sys.executable, "-m", "mlip", "eval", str(run_dir / "best.pt"), str(test), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        metrics = json.loads(out.stdout)
    out = {
        "energy_rmse_mev_per_atom": 1e3 * metrics["energy_rmse"],
        "forces_rmse_mev_per_a": 1e3 * metrics["forces_rmse"],
    }
    if "stress_rmse" in metrics:
        out["stress_rmse_mev_per_a3"] = 1e3 * metrics["stress_rmse"]
    return out


def _mace_validations(out: Path) -> int:
    """How many validation rows MACE has logged so far."""
    logs = sorted((out / "mace" / "logs").glob("*.log"))
    return len(re.findall(r"Epoch \d+:", logs[0].read_text())) if logs else 0


def finalize_mace(args, out: Path) -> float:
    """Test the best checkpoint of a stopped MACE run: restart it with no epochs left, which
    loads the checkpoint, saves its model and writes the test error table. Returns seconds."""
    ckpts = sorted(
        (out / "mace" / "checkpoints").glob("*_epoch-*.pt"),
        key=lambda p: int(re.search(r"_epoch-(\d+)", p.name).group(1)),
    )
    if not ckpts:
        raise SystemExit(f"MACE saved no checkpoint under {out / 'mace' / 'checkpoints'}")
    epoch = int(re.search(r"_epoch-(\d+)", ckpts[-1].name).group(1))
    cmd = mace_command(args, out)
    cmd[cmd.index("--max_num_epochs") + 1] = str(epoch)
    start = time.perf_counter()
    with open(out / "mace_finalize.out", "w") as log:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd + ["--restart_latest"], env=env, stdout=log, stderr=log)
    if proc.returncode != 0:
        raise SystemExit(f"testing MACE's checkpoint failed; see {out / 'mace_finalize.out'}")
    args.mace_checkpoint_epoch = epoch
    return time.perf_counter() - start


def train_side_by_side(args, rows: dict) -> bool:
    """Run mlip and MACE at once; each wall time ends when its own process does. True when
    ``--mace-time`` stopped MACE (its best checkpoint is still to be tested)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    jobs = {}
    start = time.perf_counter()
    for name, cmd in (
        ("mlip", mlip_command(args, args.out)),
        ("mace", mace_command(args, args.out)),
    ):
        log = open(args.out / f"{name}.out", "w")
        jobs[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    seen, stopped = None, False  # MACE's validation count when --mace-time ran out
    while jobs:
        if "mace" in jobs and args.mace_time is not None:
            if seen is None and time.perf_counter() - start > args.mace_time:
                seen = _mace_validations(args.out)
            if seen is not None and _mace_validations(args.out) > seen:
                proc, log = jobs.pop("mace")
                proc.kill()
                proc.wait()
                log.close()
                rows["mace"]["wall_s"] = time.perf_counter() - start
                stopped = True
        for name, (proc, log) in list(jobs.items()):
            if proc.poll() is None:
                continue
            log.close()
            del jobs[name]
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed (exit {proc.returncode}); see {log.name}")
            rows[name]["wall_s"] = time.perf_counter() - start
        time.sleep(1.0)
    return stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=ROOT / "configs/acac-facet-s-long.yaml",
        help="the mlip training config (its data section should match --train)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override for the mlip run, as for `mlip train --set`",
    )
    parser.add_argument("--time", type=float, default=4200, help="mlip's training seconds")
    parser.add_argument("--mace-epochs", type=int, default=100)
    parser.add_argument(
        "--mace-time",
        type=float,
        help="stop MACE after this many seconds (and its next validation), test its best "
        "checkpoint; --mace-epochs is then an upper bound",
    )
    parser.add_argument(
        "--mace-finalize",
        action="store_true",
        help="train nothing: test the best checkpoint of the MACE run in --out, and print "
        "the table with mlip's test metrics from the same directory",
    )
    parser.add_argument("--mace-hidden", default="64x0e+64x1o")
    parser.add_argument("--mace-python", required=True, help="python of the mace-torch venv")
    parser.add_argument(
        "--mace-weights",
        type=float,
        nargs=3,
        default=(1.0, 1000.0, 100.0),
        metavar=("E", "F", "S"),
        help="MACE's energy, forces, stress weights "
        "(default: the acac recipe; MACE-MP's 1 10 100 with a stress split)",
    )
    # Under torch 2.13, mace-torch 0.3.16's SWA stage fails at its first update, on the TiAl
    # stress run and on ethanol alike (AveragedModel: "size of tensor a (3) must match ...
    # (0)"), so it is off unless asked for
    parser.add_argument(
        "--mace-swa",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="MACE's SWA stage (off: it fails under torch 2.13 with mace-torch 0.3.16)",
    )
    parser.add_argument(
        "--mace-scaling",
        default="rms_forces_scaling",
        choices=["rms_forces_scaling", "std_scaling", "no_scaling"],
    )
    parser.add_argument(
        "--config-split",
        action="store_true",
        help="give MACE the config's own train and test frames (implied by "
        "data.test_fraction; needed for a pattern or a non-extxyz train file)",
    )
    parser.add_argument("--train", type=Path, default=DATA / "train_300K.xyz")
    parser.add_argument("--test", type=Path, default=DATA / "test_MD_300K.xyz")
    parser.add_argument("--isolated", type=Path, default=DATA / "isolated_atoms.xyz")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/vs-mace")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.energy_key, args.forces_key, args.stress = "energy", "forces", False
    args.valid_fraction = 0.1
    data = load_config(args.config).data
    if args.config_split or data.test_fraction > 0:
        args.train, args.test, args.stress = write_split(args.config, args.out)
        args.energy_key, args.forces_key = "REF_energy", "REF_forces"
        # MACE's E0s as mlip's: the isolated atoms where the config has them, else least squares
        args.isolated = Path(data.isolated) if data.e0 == "isolated" else None
        args.valid_fraction = data.valid_fraction
        args.config_split = True
        if "--mace-weights" not in sys.argv:
            args.mace_weights = (1.0, 10.0, 100.0)
    rows = {"mlip": {}, "mace": {}}
    args.mace_checkpoint_epoch = None
    if args.mace_finalize:  # mlip's training time from its log; MACE's is not known here
        import csv

        with open(args.out / "mlip" / "metrics.csv") as f:
            rows["mlip"]["wall_s"] = float(list(csv.DictReader(f))[-1]["time_s"])
        rows["mace"]["wall_s"] = float("nan")
        stopped = True
    else:
        stopped = train_side_by_side(args, rows)
    if stopped:  # after mlip has finished, so that the test run takes none of its time
        rows["mace"]["finalize_s"] = finalize_mace(args, args.out)
    rows["mlip"].update(mlip_test_errors(args.out / "mlip", args.test))
    rows["mace"].update(mace_test_errors(args.out / "mace" / "logs"))
    print(f"\nTest set {args.test.name}; one thread each, side by side.\n")
    stress = args.stress
    print(
        "| model | wall time incl. testing (min) | energy RMSE (meV/atom) | force RMSE (meV/Å) |"
        + (" stress RMSE (meV/Å³) |" if stress else "")
    )
    print("|---|---|---|---|" + ("---|" if stress else ""))
    labels = {
        "mlip": f"mlip ({args.config.name})",
        "mace": f"MACE {args.mace_hidden}, L=3, correlation 3, "
        + (
            f"best checkpoint of epoch {args.mace_checkpoint_epoch}"
            if args.mace_checkpoint_epoch is not None
            else f"{args.mace_epochs} epochs"
        ),
    }
    for name, row in rows.items():
        print(
            f"| {labels[name]} | {row['wall_s'] / 60:.0f} | "
            f"{row['energy_rmse_mev_per_atom']:.2f} | {row['forces_rmse_mev_per_a']:.1f} |"
            + (f" {row['stress_rmse_mev_per_a3']:.2f} |" if stress else "")
        )
    atomic_write_text(args.out / "summary.json", json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

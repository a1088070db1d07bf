"""``mlip train CONFIG``: train a model as the YAML configuration says."""

from __future__ import annotations

import argparse
import json
import os


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML configuration",
        description="Train a model as CONFIG (YAML) says: sections model, data, loss, optim, run "
        "and finetune; every key has a default and unknown keys are errors. The run directory "
        "(run.run_dir) gets config.yaml (the resolved configuration), best.pt, last.pt, "
        "metrics.csv and train.log. A run directory that already has last.pt is continued "
        "exactly where it stopped. Under torchrun (`torchrun --nproc-per-node N -m mlip train "
        "CONFIG`) the processes train one model with DDP.",
    )
    p.add_argument("config", metavar="CONFIG", help="YAML configuration file")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override one setting, VALUE read as YAML (repeatable), e.g. --set optim.lr=5e-4 "
        "--set run.epochs=20",
    )
    p.add_argument("--max-time", type=float, default=None, metavar="SECONDS",
                   help="stop cleanly after this many seconds of training (resumable); with "
                   "--set run.fit_to_time=true the epochs and the lr schedule are fitted to it")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (from its last.pt)")
    return p


def run(args) -> int:
    from ..train import train

    result = train(args.config, args.overrides, resume=args.resume, max_time=args.max_time)
    summary = {
        "run_dir": str(result.run_dir), "status": result.status, "epochs": result.epochs,
        "steps": result.steps, "best_epoch": result.best_epoch,
        "best_valid_mev": {k: round(1000 * v, 3) for k, v in result.best_valid.items()
                           if isinstance(v, float)},
    }
    if result.test is not None:
        summary["test_mev"] = {k: round(1000 * v, 3) for k, v in result.test.items()
                               if k.endswith(("_mae", "_rmse"))}
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary
        print(json.dumps(summary))
    return 0

"""The ``mlip`` command: one entry point, one module per verb (``mlip/cli/<verb>.py``).

Each verb module has ``add_parser(subparsers)`` and ``run(args) -> int``. Errors that a user
can fix exit non-zero with one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._malloc import tune_malloc

VERBS = ("train", "predict", "eval", "md", "relax", "eos", "convert", "info", "check", "lammps")


def _verb_modules():
    for verb in VERBS:
        try:
            yield verb, importlib.import_module(f"mlip.cli.{verb}")
        except ModuleNotFoundError as err:
            if err.name != f"mlip.cli.{verb}":
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlip",
        description="Machine-learned interatomic potentials: train, evaluate, predict, run MD "
        "and relaxations. Run `mlip VERB --help` for each verb.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb, module in _verb_modules():
        module.add_parser(sub)
        sub.choices[verb].set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", force=True
    )
    if not args.verb:
        parser.print_help()
        return 2
    tune_malloc()  # every verb runs models: keep tensor memory in the heap (mlip/_malloc.py)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("mlip: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every error reaches the user as one line unless --debug
        if args.debug:
            raise
        print(f"mlip {args.verb}: error: {err}", file=sys.stderr)
        return 1

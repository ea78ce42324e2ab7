"""``fanogan`` command line: argument wiring only; the work is done by the package.

Subcommands live with their arguments in :mod:`.training` (train, calibrate), :mod:`.results`
(score, info, evaluate, report, samples, turing-test), :mod:`.serving` (export, serve, query)
and :mod:`.beam` (beam-score).
"""

from __future__ import annotations

import argparse
import os
import sys

from tf_fanogan.cli import beam, results, serving, training
from tf_fanogan.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, SERVE_STOP  # noqa: F401 -- public

COMMANDS: dict = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fanogan", description="f-AnoGAN anomaly detection (TensorFlow/Keras).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (training, results, serving, beam):
        COMMANDS.update(module.add_parsers(sub))
    return parser


def main(argv=None) -> int:
    """Entry point; returns the exit code (0 ok, 1 bad input or failure, 2 usage)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in beam.PASSES_UNKNOWN_OPTIONS:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.pipeline_args = unknown
    # TensorFlow's C++ start-up lines (oneDNN, CUDA probing) would precede every one-line error;
    # a user who sets TF_CPP_MIN_LOG_LEVEL keeps their choice.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tf_fanogan.config import ConfigError
    from tf_fanogan.data.images import DataError

    errors = (ConfigError, DataError, FileNotFoundError, ValueError, OSError)
    if args.command in beam.PASSES_UNKNOWN_OPTIONS:
        errors += (RuntimeError,)  # a runner that cannot start (e.g. PrismRunner without its binary) says why
    if args.command in ("query",):
        from tf_fanogan.serving.client import ServingClientError

        errors += (ServingClientError,)
    else:
        from tf_fanogan.detector import DetectorError
        from tf_fanogan.serving.export import ExportError
        from tf_fanogan.serving.servable import ServingError
        from tf_fanogan.training.callbacks import TrainingDiverged

        errors += (DetectorError, ExportError, ServingError, TrainingDiverged)
    try:
        return COMMANDS[args.command](args)
    except errors as e:
        print(f"fanogan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


def main_exit() -> None:
    """Console-script wrapper: ``sys.exit(main())``."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()

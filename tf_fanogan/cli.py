"""``fanogan`` command line: argument wiring only; the work is done by the package."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _add_data(p, name="--data", required=True, help_text="image folder, .npy array or image file"):
    p.add_argument(name, required=required, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fanogan", description="f-AnoGAN anomaly detection (TensorFlow/Keras).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a detector on normal images (both stages, or one)")
    _add_data(p, help_text="normal training images: folder, .npy or image file")
    p.add_argument("--out", required=True, help="detector directory to write")
    p.add_argument("--config", help="YAML/JSON config file (see FAnoGANConfig)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set gan.epochs=5 (repeatable)")
    p.add_argument("--stage", choices=["both", "gan", "encoder"], default="both",
                   help="'encoder' continues from the detector already in --out")
    p.add_argument("--validation", help="normal validation images for the encoder losses")
    p.add_argument("--workdir", help="backups and logs (default: <out>.work); a rerun resumes from it")
    p.add_argument("--calibrate", help="normal hold-out images: calibrate after training")
    p.add_argument("--fpr", type=float, default=0.05, help="target false-positive rate for --calibrate")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("calibrate", help="set the threshold from normal hold-out images")
    p.add_argument("detector")
    _add_data(p, help_text="clean normal hold-out images")
    p.add_argument("--fpr", type=float, default=0.05)

    p = sub.add_parser("score", help="score images and write a CSV (one row per image)")
    p.add_argument("detector")
    _add_data(p)
    p.add_argument("--output", required=True, help="CSV file to write")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="'skip' scores the good files and writes the bad ones to <output>.errors.csv")

    p = sub.add_parser("info", help="print a detector's config, parameters and calibration")
    p.add_argument("detector")
    return parser


def _detector_config(args):
    from tf_fanogan.config import FAnoGANConfig

    cfg = FAnoGANConfig.load(args.config) if args.config else FAnoGANConfig()
    return cfg.with_overrides(args.set) if args.set else cfg


def _train(args) -> int:
    from tf_fanogan.detector import FAnoGAN

    workdir = args.workdir or args.out.rstrip("/") + ".work"
    if args.stage == "encoder":
        det = FAnoGAN.load(args.out)
        if args.config or args.set:
            det.config = _detector_config(args)
    else:
        det = FAnoGAN(_detector_config(args))
    det.fit(args.data, validation=args.validation, stage=args.stage, workdir=workdir,
            verbose=0 if args.quiet else "auto")
    if args.calibrate:
        det.calibrate(args.calibrate, fpr=args.fpr)
    det.save(args.out)
    print(f"saved detector to {args.out}" + (f" (threshold {det.threshold_:.6g})" if det.threshold_ is not None else ""))
    return EXIT_OK


def _calibrate(args) -> int:
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN.load(args.detector)
    det.calibrate(args.data, fpr=args.fpr)
    det.save(args.detector)
    c = det.calibration_
    print(f"threshold {det.threshold_:.6g} at target FPR {c['fpr_target']} "
          f"(hold-out FPR {c['fpr_on_holdout']:.4f}, {c['n_images']} images)")
    return EXIT_OK


def _score(args) -> int:
    from tf_fanogan import data as data_lib
    from tf_fanogan import signatures as sig
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN.load(args.detector)
    images, names, errors = data_lib.read_any(args.data, on_error=args.on_error)
    m = det.config.model
    if args.on_error == "skip" and not isinstance(images, __import__("numpy").ndarray):
        good_images, good_names = [], []
        for img, name in zip(images, names):
            try:
                good_images.append(data_lib.to_unit_range([img], m.image_size, m.channels, [name])[0])
                good_names.append(name)
            except data_lib.DataError as e:
                errors.append((name, str(e)))
        if not good_images:
            raise data_lib.DataError(f"{args.data}: no image could be scored ({len(errors)} errors)")
        images, names = __import__("numpy").stack(good_images), good_names
    total = len(names)
    scores = {}
    batch = args.batch_size or det.config.score_batch_size
    for start in range(0, total, batch):
        part = det.score(images[start:start + batch], batch_size=batch)
        for k, v in part.items():
            scores.setdefault(k, []).append(v)
        done = min(start + batch, total)
        print(f"\rscored {done}/{total}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    import numpy as np

    scores = {k: np.concatenate(v) for k, v in scores.items()}
    columns = ["path", *sig.SCORE_OUTPUTS] + ([sig.IS_ANOMALY] if sig.IS_ANOMALY in scores else [])
    _write_csv(args.output, columns,
               [[name] + [_fmt(scores[c][i]) for c in columns[1:]] for i, name in enumerate(names)])
    if errors:
        _write_csv(args.output + ".errors.csv", ["path", "reason"], errors)
    flagged = int(scores[sig.IS_ANOMALY].sum()) if sig.IS_ANOMALY in scores else None
    print(f"scored {total} images -> {args.output}"
          + (f"; {flagged} flagged anomalous" if flagged is not None else "; not calibrated, no decisions")
          + (f"; {len(errors)} skipped -> {args.output}.errors.csv" if errors else ""))
    return EXIT_OK


def _fmt(v):
    return str(bool(v)).lower() if isinstance(v, (bool,)) or getattr(v, "dtype", None) == bool else repr(float(v))


def _write_csv(path, header, rows):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def _info(args) -> int:
    from tf_fanogan.detector import FAnoGAN

    print(json.dumps(FAnoGAN.load(args.detector).summary(), indent=2))
    return EXIT_OK


COMMANDS = {"train": _train, "calibrate": _calibrate, "score": _score, "info": _info}


def main(argv=None) -> int:
    """Entry point; returns the exit code (0 ok, 1 bad input or failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tf_fanogan.config import ConfigError
    from tf_fanogan.data import DataError
    from tf_fanogan.detector import DetectorError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError, DetectorError, FileNotFoundError, ValueError) as e:
        print(f"fanogan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR



def main_exit() -> None:
    """Console-script wrapper: ``sys.exit(main())``."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()

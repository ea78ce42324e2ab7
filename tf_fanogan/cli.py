"""``fanogan`` command line: argument wiring only; the work is done by the package."""

from __future__ import annotations

import argparse
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
    p.add_argument("--fresh", action="store_true", help="delete the workdir first and train from scratch")
    p.add_argument("--calibrate", help="normal hold-out images: calibrate after training")
    p.add_argument("--fpr", type=float, default=0.05, help="target false-positive rate for --calibrate")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--tensorboard", help="TensorBoard directory (default: <workdir>/tensorboard)")
    p.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard summaries")
    p.add_argument("--image-interval", type=int, default=1, help="write image summaries every N epochs (default 1)")
    p.add_argument("--strategy", choices=["none", "mirrored", "multi_worker"], default="none",
                   help="tf.distribute strategy for both stages: mirrored = all GPUs of this machine, "
                        "multi_worker = the workers in TF_CONFIG (run the same command on each); "
                        "batch sizes are global (default none)")

    p = sub.add_parser("calibrate", help="set the threshold from normal hold-out images")
    p.add_argument("detector")
    _add_data(p, help_text="clean normal hold-out images")
    p.add_argument("--fpr", type=float, default=0.05)

    p = sub.add_parser("score", help="score images and write a CSV (one row per image)")
    p.add_argument("detector")
    _add_data(p, help_text="image folder (recursive), .txt list of paths, .npy array or image file")
    p.add_argument("--output", required=True, help="CSV file to write (streamed via <output>.partial; a rerun resumes it)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="'skip' scores the good files and writes the bad ones to <output>.errors.csv")

    p = sub.add_parser("evaluate", help="metrics and plots on labelled images (normal/ anomalous/ [masks/] or CSV)")
    p.add_argument("detector")
    _add_data(p, help_text="folder with normal/ and anomalous/ (optional masks/), or a CSV of path,label[,mask]")
    p.add_argument("--out", required=True, help="folder for metrics.json, scores.csv and the ROC/PR/histogram PNGs")
    p.add_argument("--validation", help="labelled validation split (same layout): F1-optimal threshold on it "
                                        "instead of the detector's normal-only calibration")
    p.add_argument("--pixel-calibration", help="normal images whose residual maps set the pixel threshold (for Dice)")
    p.add_argument("--pixel-fpr", type=float, default=0.01, help="pixel false-positive rate for that threshold")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the AUROC interval (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    p = sub.add_parser("samples", help="PNG grids of generated samples and latent interpolations")
    p.add_argument("detector")
    p.add_argument("--out", required=True, help="folder for samples.png and interpolation.png")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("report", help="one self-contained HTML page for an evaluated detector")
    p.add_argument("detector")
    p.add_argument("--evaluation", required=True, help="the --out folder of `fanogan evaluate`")
    p.add_argument("--out", required=True, help="HTML file to write")
    p.add_argument("--title")

    p = sub.add_parser("turing-test", help="visual Turing test: real vs generated images for raters, then score them")
    tsub = p.add_subparsers(dest="turing_command", required=True)
    t = tsub.add_parser("make", help="write a shuffled, numbered set of N real and N generated images and a key")
    t.add_argument("detector")
    _add_data(t, help_text="real normal images")
    t.add_argument("--n", type=int, default=20, help="real and generated images each (default 20)")
    t.add_argument("--out", required=True, help="folder for images/, sheet.png, answers_template.csv, answer_key.csv")
    t.add_argument("--seed", type=int, default=0)
    t = tsub.add_parser("score", help="score raters' answer files against the key")
    t.add_argument("--key", required=True, help="answer_key.csv written by 'make'")
    t.add_argument("answers", nargs="+", help="one CSV per rater: id,answer (real/generated)")
    t.add_argument("--output", help="JSON file for the results (default: print only)")

    p = sub.add_parser("info", help="print a detector's config, parameters and calibration")
    p.add_argument("detector")

    p = sub.add_parser("export", help="export a calibrated detector as a TF Serving SavedModel version")
    p.add_argument("detector")
    p.add_argument("--base-path", default="saved_models", help="parent of <model>/<version>/ (default saved_models)")
    p.add_argument("--model-name", default="fanogan")
    p.add_argument("--version", type=int, default=None, help="integer version (default: next free)")
    p.add_argument("--no-warmup", action="store_true", help="do not write assets.extra warm-up requests")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    p = sub.add_parser("serve", help="local TF Serving-compatible gRPC/REST server (development and tests)")
    p.add_argument("--model_name", "--model-name")
    p.add_argument("--model_base_path", "--model-base-path", help="the folder holding <int version>/ folders")
    p.add_argument("--model_config_file", "--model-config-file", help="models.config (ModelServerConfig text proto)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    p.add_argument("--rest_api_port", "--rest-api-port", type=int, default=8501, help="REST port (default 8501; 0 picks a free port, -1 disables REST)")
    p.add_argument("--file_system_poll_wait_seconds", "--poll", type=float, default=1.0)
    p.add_argument("--max_rest_body_mb", type=int, default=64, help="largest REST request body (default 64 MiB)")
    p.add_argument("--grpc_max_message_mb", type=int, default=2047,
                   help="largest gRPC message received or sent (default 2047 MiB, as TF Serving)")
    p.add_argument("--model_config_file_poll_wait_seconds", "--config-poll", type=float, default=0.0,
                   help="re-read --model_config_file this often (0: never), as TF Serving does")
    p.add_argument("--enable_batching", "--enable-batching", action="store_true",
                   help="batch concurrent requests server-side, as TF Serving's --enable_batching")
    p.add_argument("--batching_parameters_file", "--batching-parameters-file",
                   help="TF Serving batching_parameters.txt (used with --enable_batching)")

    p = sub.add_parser("query", help="query a served detector over gRPC (or REST with --rest)")
    p.add_argument("--target", default="127.0.0.1:8500", help="gRPC host:port (default 127.0.0.1:8500)")
    p.add_argument("--rest", help="REST base URL instead of gRPC, e.g. http://127.0.0.1:8501")
    p.add_argument("--model-name", default="fanogan")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--version", type=int)
    g.add_argument("--label", help="version label, e.g. stable or canary")
    p.add_argument("--data", help="image folder/file (sent encoded, resized server-side) or .npy array")
    p.add_argument("--output", help="CSV to write (default: print)")
    p.add_argument("--describe", action="store_true", help="print the signatures (GetModelMetadata) and status")
    p.add_argument("--timeout", type=float, default=30.0)
    return parser


def _detector_config(args, base=None):
    """The config file (or ``base``, else the defaults) with the ``--set`` overrides."""
    from tf_fanogan.config import FAnoGANConfig

    cfg = FAnoGANConfig.load(args.config) if args.config else (base or FAnoGANConfig())
    return cfg.with_overrides(args.set) if args.set else cfg


def _training_plan(det, stage: str) -> str:
    """One line: the effective model, budgets and device, so a config that silently selects the
    paper's 64x64 width-64 model on a CPU is visible before it starts."""
    import tensorflow as tf

    c = det.config
    m = c.model
    budget = lambda section, unit: (f"{section.iterations} {unit} updates" if section.iterations  # noqa: E731
                                    else f"{section.epochs} epochs")
    gpus = tf.config.list_physical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores)"
    parts = [f"model {m.image_size}x{m.image_size}x{m.channels}, width {m.dim}, latent {m.latent_dim} "
             f"({m.latent_prior} prior)"]
    if stage in ("both", "gan"):
        parts.append(f"stage 1/2 WGAN-GP: {budget(c.gan, 'generator')}, batch {c.gan.batch_size}")
    if stage in ("both", "encoder"):
        parts.append(f"stage 2/2 encoder {c.encoder.mode}: {budget(c.encoder, 'encoder')}, "
                     f"batch {c.encoder.batch_size}")
    return "training: " + "; ".join(parts) + f"; device: {device}"


def _train(args) -> int:
    from tf_fanogan.training import distribute
    from tf_fanogan.detector import FAnoGAN

    from tf_fanogan.training.workdir import for_worker

    strategy = distribute.make_strategy(args.strategy)
    chief = distribute.is_chief(strategy)
    workdir = args.workdir or args.out.rstrip("/") + ".work"
    own_workdir = for_worker(workdir, strategy)
    if args.fresh and os.path.isdir(own_workdir):
        import shutil

        shutil.rmtree(own_workdir)
        print(f"--fresh: removed {own_workdir}")
    if args.stage == "encoder":
        det = FAnoGAN.load(args.out, strategy=strategy)
        if args.config or args.set:
            # Overrides apply to the saved config; the trained GAN is kept in a rebuilt detector.
            det = FAnoGAN.from_networks(_detector_config(args, base=det.config), det.generator, det.critic,
                                        strategy=strategy)
    else:
        det = FAnoGAN(_detector_config(args), strategy=strategy)
    tensorboard = None if args.no_tensorboard else (args.tensorboard or os.path.join(workdir, "tensorboard"))
    if args.image_interval < 1:
        raise ValueError(f"--image-interval must be >= 1, got {args.image_interval}")
    data = det.prepare(args.data)  # read first: a bad --data is one line on stderr, before anything else
    validation = det.prepare(args.validation) if args.validation else None
    if not args.quiet:
        print(_training_plan(det, args.stage), file=sys.stderr, flush=True)
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress bar: stdout is for results
        det.fit(data, validation=validation, stage=args.stage, workdir=workdir,
                verbose=0 if args.quiet else "auto", tensorboard=tensorboard, image_interval=args.image_interval)
    if tensorboard:
        print(f"training curves and images: tensorboard --logdir {tensorboard}")
    if not chief:
        print(f"worker {distribute.worker_index(strategy)}: training done; the chief worker saves the detector")
        return EXIT_OK
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
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.scoring.streaming import score_to_csv

    det = FAnoGAN.load(args.detector)
    c = score_to_csv(det, args.data, args.output, batch_size=args.batch_size or det.config.score_batch_size,
                     on_error=args.on_error)
    total = c["scored"] + c["resumed"]
    print(f"scored {total} images -> {args.output}"
          + (f" ({c['resumed']} from the interrupted run)" if c["resumed"] else "")
          + (f"; {c['flagged']} flagged anomalous" if c["flagged"] is not None else "; not calibrated, no decisions")
          + (f"; {c['errors']} skipped -> {args.output}.errors.csv" if c["errors"] else "")
          + f"; {c['scored'] / max(c['seconds'], 1e-9):.0f} images/s")
    return EXIT_OK


def _info(args) -> int:
    from tf_fanogan.detector import FAnoGAN

    print(json.dumps(FAnoGAN.load(args.detector).summary(), indent=2))
    return EXIT_OK


def _evaluate(args) -> int:
    from tf_fanogan.data.images import read_any, read_labelled
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.evaluation.metrics import evaluate_detector

    det = FAnoGAN.load(args.detector)
    from tf_fanogan.utils.progress import Progress

    bar = Progress(f"reading {args.data}", enabled=not args.quiet)
    images, labels, masks, names = read_labelled(args.data, progress=bar)
    bar.close()
    validation = None
    if args.validation:
        bar = Progress(f"reading {args.validation}", enabled=not args.quiet)
        v_images, v_labels, _, _ = read_labelled(args.validation, progress=bar)
        bar.close()
        validation = (v_images, v_labels)
    pixel_normal = read_any(args.pixel_calibration)[0] if args.pixel_calibration else None
    m = evaluate_detector(det, images, labels, masks, validation=validation, pixel_normal=pixel_normal,
                          pixel_fpr=args.pixel_fpr, bootstrap=args.bootstrap, seed=args.seed,
                          out_dir=args.out, names=names, progress=not args.quiet)
    ci = m.get("auroc_ci95")
    print(f"{m['n_normal']} normal, {m['n_anomalous']} anomalous: AUROC {m['auroc']:.4f}"
          + (f" (95% CI {ci[0]:.4f}-{ci[1]:.4f})" if ci else "") + f", AUPR {m['aupr']:.4f}")
    print(f"threshold {m['threshold']:.6g} ({m['threshold_source']}): precision {m['precision']:.4f}, "
          f"sensitivity {m['sensitivity']:.4f}, specificity {m['specificity']:.4f}, F1 {m['f1']:.4f}")
    if "pixel" in m:
        px = m["pixel"]
        print(f"pixels: AUROC {px['pixel_auroc']:.4f}, AUPRO(0.3) {px['aupro_0.3']:.4f}"
              + (f", Dice {px['dice']:.4f}" if "dice" in px else ", no Dice (give --pixel-calibration)"))
    print(f"wrote {args.out}/metrics.json, scores.csv, roc.png, pr.png, histogram.png, top_anomalies.png, extremes.png")
    return EXIT_OK


def _samples(args) -> int:
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.reporting.visualize import generator_grids_png

    det = FAnoGAN.load(args.detector)
    if not det.trained_["gan"]:
        from tf_fanogan.errors import DetectorError

        raise DetectorError(f"{args.detector}: the detector has no trained GAN yet")
    samples, interp = generator_grids_png(det.generator, args.out, seed=args.seed,
                                          latent_prior=det.config.model.latent_prior)
    print(f"wrote {samples} and {interp}")
    return EXIT_OK


def _report(args) -> int:
    from tf_fanogan.reporting.report import build_report

    path = build_report(args.detector, args.evaluation, args.out, args.title)
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB, images embedded)")
    return EXIT_OK


def _turing_test(args) -> int:
    from tf_fanogan.reporting import turing

    if args.turing_command == "make":
        from tf_fanogan.detector import FAnoGAN

        made = turing.make_test(FAnoGAN.load(args.detector), args.data, args.n, args.out, args.seed)
        print(f"wrote {made['n_images']} numbered images to {args.out}/images and {args.out}/sheet.png; raters fill "
              f"in a copy of {args.out}/answers_template.csv (real/generated); keep {made['key']} from them")
        return EXIT_OK
    result = turing.score_test(args.key, args.answers)
    for name, r in result["raters"].items():
        print(f"{name}: accuracy {r['accuracy']:.3f} (generated called real {r['generated_called_real']:.3f}, "
              f"real called generated {r['real_called_generated']:.3f})")
    for pair, a in result["agreement"].items():
        print(f"{pair}: Cohen's kappa {a['cohen_kappa']:.3f}, raw agreement {a['raw_agreement']:.3f}")
    print(f"mean accuracy {result['mean_accuracy']:.3f} over {result['n_images']} images ({result['note']})")
    if args.output:
        _write_json(args.output, result)
    return EXIT_OK


def _write_json(path, data):
    from tf_fanogan.utils.atomic import write_file_atomically

    write_file_atomically(path, lambda f: json.dump(data, f, indent=2))


def _export(args) -> int:
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.serving.export import export_detector

    det = FAnoGAN.load(args.detector)
    path = export_detector(det, args.base_path, args.model_name, args.version, warmup=not args.no_warmup,
                           progress=not args.quiet)
    print(f"exported {args.detector} -> {path}")
    return EXIT_OK


def _serve(args) -> int:
    import logging
    import signal
    import threading

    from tf_fanogan.serving.servable import ServingError
    from tf_fanogan.serving.server import ModelServer, entries_from_flags

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    entries = entries_from_flags(args.model_name, args.model_base_path, args.model_config_file)
    batching = None
    if args.enable_batching:
        from tf_fanogan.serving.batching import BatchingParameters, parse_batching_parameters

        if args.batching_parameters_file:
            with open(args.batching_parameters_file) as f:
                batching = parse_batching_parameters(f.read(), args.batching_parameters_file)
        else:
            batching = BatchingParameters()
    server = ModelServer(entries, host=args.host, port=args.port, batching=batching,
                         rest_port=None if args.rest_api_port < 0 else args.rest_api_port,
                         poll_interval=args.file_system_poll_wait_seconds,
                         max_rest_body_bytes=args.max_rest_body_mb << 20,
                         max_message_bytes=min(args.grpc_max_message_mb << 20, (1 << 31) - 1)).start()
    print(f"serving {', '.join(e.name for e in entries)}: gRPC {server.target}"
          + (f", REST http://{args.host}:{server.rest_port}" if server.rest_port else ""), flush=True)
    done = threading.Event()
    for sig_num in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig_num, lambda *_: done.set())
    poll = args.model_config_file_poll_wait_seconds if args.model_config_file else 0
    seen = os.path.getmtime(args.model_config_file) if poll > 0 else None
    while not done.wait(poll if poll > 0 else None):
        mtime = os.path.getmtime(args.model_config_file) if os.path.exists(args.model_config_file) else seen
        if mtime == seen:
            continue
        seen = mtime
        try:  # a bad new config is logged and the old one keeps serving, as in TF Serving
            server.manager.reload_config(entries_from_flags(model_config_file=args.model_config_file))
            logging.info("reloaded %s", args.model_config_file)
        except (ServingError, ValueError, OSError) as e:
            logging.error("kept the previous config: %s: %s", args.model_config_file, getattr(e, "message", e))
    server.stop()
    return EXIT_OK


def _query(args) -> int:
    import numpy as np

    from tf_fanogan import signatures as sig
    from tf_fanogan.serving.client import FAnoGANClient, RestClient

    if args.rest:
        client = RestClient(args.rest, args.model_name, args.version, args.label, timeout=args.timeout)
    else:
        client = FAnoGANClient(args.target, args.model_name, args.version, args.label, timeout=args.timeout)
    if args.describe or not args.data:
        print(json.dumps({"status": client.status(), "signatures": client.metadata()}, indent=2, default=list))
        return EXIT_OK
    if args.data.endswith(".npy"):
        import numpy as np

        images = np.load(args.data, allow_pickle=False)
        names = [f"{args.data}[{i}]" for i in range(len(images))]
        scores = client.score(images)
    else:
        from tf_fanogan.data.images import list_images

        names = list_images(args.data) if os.path.isdir(args.data) else [args.data]
        scores = {}
        for start in range(0, len(names), 64):
            part = client.score_files(names[start:start + 64])
            for k, v in part.items():
                scores.setdefault(k, []).append(v)
        scores = {k: np.concatenate(v) for k, v in scores.items()}
    from tf_fanogan.scoring import rows as score_rows

    if args.output:
        score_rows.write_score_rows(args.output, names, scores)
        print(f"queried {len(names)} images -> {args.output}")
    else:
        header = score_rows.columns(scores)
        print(",".join(header))
        for r in score_rows.rows(names, scores, header):
            print(",".join(r))
    return EXIT_OK


COMMANDS = {"train": _train, "calibrate": _calibrate, "score": _score, "info": _info,
            "evaluate": _evaluate, "turing-test": _turing_test, "report": _report, "samples": _samples, "export": _export, "serve": _serve, "query": _query}


def main(argv=None) -> int:
    """Entry point; returns the exit code (0 ok, 1 bad input or failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    # TensorFlow's C++ start-up lines (oneDNN, CUDA probing) would precede every one-line error;
    # a user who sets TF_CPP_MIN_LOG_LEVEL keeps their choice.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tf_fanogan.config import ConfigError
    from tf_fanogan.data.images import DataError

    errors = (ConfigError, DataError, FileNotFoundError, ValueError, OSError)
    if args.command in ("query",):
        from tf_fanogan.serving.client import ServingClientError

        errors += (ServingClientError,)
    else:
        from tf_fanogan.training.callbacks import TrainingDiverged
        from tf_fanogan.detector import DetectorError
        from tf_fanogan.serving.export import ExportError
        from tf_fanogan.serving.servable import ServingError

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

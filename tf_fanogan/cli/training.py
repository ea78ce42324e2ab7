"""Training and calibration: ``fanogan train``, ``fanogan calibrate``.

Each subcommand's arguments sit next to its thin handler, which calls the package."""

from __future__ import annotations

import os
import sys

from tf_fanogan.cli.common import EXIT_OK, SERVE_STOP, add_data  # noqa: F401


def add_parsers(sub) -> dict:
    """Adds this module's subcommands; returns {name: handler}."""
    p = sub.add_parser("train", help="train a detector on normal images (both stages, or one)")
    add_data(p, help_text="normal training images: folder, .npy or image file")
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
    add_data(p, help_text="clean normal hold-out images")
    p.add_argument("--fpr", type=float, default=0.05)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a score setting first (scoring.normalize, scoring.residual_pooling, "
                        "scoring.topk_fraction, scoring.method, scoring.memory_size, encoder.kappa); other "
                        "settings need training")
    p.add_argument("--memory", metavar="TRAIN_IMAGES",
                   help="normal training images (the detector's own, never the hold-out): store their critic "
                        "features first, the memory that scoring.method critic_nn scores against")
    return {"train": _train, "calibrate": _calibrate}


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
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.training import distribute
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
    if args.set:
        from tf_fanogan.config import ConfigError

        other = [s for s in args.set if not s.split("=", 1)[0].strip().startswith("scoring.")
                 and s.split("=", 1)[0].strip() != "encoder.kappa"]
        if other:
            raise ConfigError(f"calibrate --set changes score settings only (scoring.*, encoder.kappa); {other} "
                              "need training (fanogan train)")
        det.config = det.config.with_overrides(args.set)  # the networks do not depend on these
    if args.memory:
        det.memorize(args.memory)
    det.calibrate(args.data, fpr=args.fpr)
    det.save(args.detector)
    c = det.calibration_
    t = c["term_statistics"]
    print(f"threshold {det.threshold_:.6g} at target FPR {c['fpr_target']} "
          f"(hold-out FPR {c['fpr_on_holdout']:.4f}, {c['n_images']} images); hold-out std of A_R "
          f"{t['residual_std']:.4g}, of kappa*A_D {det.config.encoder.kappa * t['feature_std']:.4g}")
    if det.config.scoring.method == "critic_nn":
        print(f"scoring.method critic_nn: the anomaly score is the critic-feature distance to the nearest of "
              f"{len(det.memory_)} normal training images")
    return EXIT_OK


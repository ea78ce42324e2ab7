"""Scoring and looking at results: ``score``, ``info``, ``evaluate``, ``report``, ``samples``, ``turing-test``.

Each subcommand's arguments sit next to its thin handler, which calls the package."""

from __future__ import annotations

import json
import os

from tf_fanogan.cli.common import EXIT_OK, SERVE_STOP, add_data  # noqa: F401


def add_parsers(sub) -> dict:
    """Adds this module's subcommands; returns {name: handler}."""
    p = sub.add_parser("score", help="score images and write a CSV (one row per image)")
    p.add_argument("detector")
    add_data(p, help_text="image folder (recursive), .txt list of paths, .npy array or image file")
    p.add_argument("--output", required=True, help="CSV file to write (streamed via <output>.partial; a rerun resumes it)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--alpha", type=float, default=None,
                   help="flag p_value <= ALPHA (false-positive rate at most ALPHA for images like the hold-out "
                        "set) instead of the calibrated threshold")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="'skip' scores the good files and writes the bad ones to <output>.errors.csv")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p = sub.add_parser("evaluate", help="metrics and plots on labelled images (normal/ anomalous/ [masks/] or CSV)")
    p.add_argument("detector")
    add_data(p, help_text="folder with normal/ and anomalous/ (optional masks/), or a CSV of path,label[,mask]")
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
    add_data(t, help_text="real normal images")
    t.add_argument("--n", type=int, default=20, help="real and generated images each (default 20)")
    t.add_argument("--out", required=True, help="folder for images/, sheet.png, answers_template.csv, answer_key.csv")
    t.add_argument("--seed", type=int, default=0)
    t = tsub.add_parser("score", help="score raters' answer files against the key")
    t.add_argument("--key", required=True, help="answer_key.csv written by 'make'")
    t.add_argument("answers", nargs="+", help="one CSV per rater: id,answer (real/generated)")
    t.add_argument("--output", help="JSON file for the results (default: print only)")
    p = sub.add_parser("info", help="print a detector's config, parameters and calibration")
    p.add_argument("detector")
    return {"score": _score, "evaluate": _evaluate, "samples": _samples, "report": _report, "turing-test": _turing_test, "info": _info}


def _score(args) -> int:
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.scoring.streaming import score_to_csv

    det = FAnoGAN.load(args.detector)
    c = score_to_csv(det, args.data, args.output, batch_size=args.batch_size or det.config.score_batch_size,
                     on_error=args.on_error, alpha=args.alpha, progress=not args.quiet)
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
    from tf_fanogan.data.images import read_any
    from tf_fanogan.data.labelled import read_labelled
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


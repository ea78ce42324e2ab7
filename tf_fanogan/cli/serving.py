"""TF Serving: ``fanogan export``, ``fanogan serve``, ``fanogan query``.

Each subcommand's arguments sit next to its thin handler, which calls the package."""

from __future__ import annotations

import json
import os

from tf_fanogan.cli.common import EXIT_OK, SERVE_STOP, add_data  # noqa: F401


def add_parsers(sub) -> dict:
    """Adds this module's subcommands; returns {name: handler}."""
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
    p.add_argument("--batch-size", type=int, default=64, help="images per request (default 64)")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="'skip' scores the good files and writes the bad ones to <output>.errors.csv")
    return {"export": _export, "serve": _serve, "query": _query}


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

    from tf_fanogan.serving.manager import ConfigWatcher, entries_from_flags
    from tf_fanogan.serving.server import ModelServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    entries = entries_from_flags(args.model_name, args.model_base_path, args.model_config_file)
    batching = None
    if args.enable_batching:
        from tf_fanogan.serving.batching import (
            BatchingParameters,
            parse_batching_parameters,
        )

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
    if threading.current_thread() is threading.main_thread():  # (main() may run in a thread, as in tests)
        for sig_num in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig_num, lambda *_: done.set())
    SERVE_STOP.append(done)
    watcher = None
    if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
        watcher = ConfigWatcher(server.manager, args.model_config_file, args.model_config_file_poll_wait_seconds).start()
    done.wait()
    SERVE_STOP.remove(done)
    if watcher:
        watcher.stop()
    server.stop()
    return EXIT_OK


def _write_errors(output, errors) -> None:
    """``<output>.errors.csv`` (path, reason), as `fanogan score --on-error skip` writes; stderr without --output."""
    import csv
    import sys

    if not output:
        for path, reason in errors:
            print(f"skipped {reason}", file=sys.stderr)
        return
    from tf_fanogan.utils.atomic import write_file_atomically

    def write(f):
        w = csv.writer(f)
        w.writerow(["path", "reason"])
        w.writerows(errors)

    write_file_atomically(output + ".errors.csv", write, newline="")


def _query(args) -> int:
    import numpy as np

    from tf_fanogan.serving.client import FAnoGANClient, RestClient

    if args.rest:
        client = RestClient(args.rest, args.model_name, args.version, args.label, timeout=args.timeout)
    else:
        client = FAnoGANClient(args.target, args.model_name, args.version, args.label, timeout=args.timeout)
    if args.describe or not args.data:
        print(json.dumps({"status": client.status(), "signatures": client.metadata()}, indent=2, default=list))
        return EXIT_OK
    errors = []
    if args.data.endswith(".npy"):

        images = np.load(args.data, allow_pickle=False)
        names = [f"{args.data}[{i}]" for i in range(len(images))]
        scores = client.score(images, batch_size=args.batch_size)
    else:
        from tf_fanogan.data.images import list_images
        from tf_fanogan.serving.query import query_files

        paths = list_images(args.data, recursive=True) if os.path.isdir(args.data) else [args.data]
        names, scores, errors = query_files(client, paths, args.batch_size, args.on_error, args.timeout)
        if errors:
            _write_errors(args.output, errors)
        if not names:
            from tf_fanogan.data.images import DataError

            raise DataError(f"{args.data}: no image could be scored ({len(errors)} errors"
                            + (f", see {args.output}.errors.csv)" if args.output else ")"))
    from tf_fanogan.scoring import rows as score_rows

    if args.output:
        score_rows.write_score_rows(args.output, names, scores)
        print(f"queried {len(names)} images -> {args.output}"
              + (f"; {len(errors)} skipped -> {args.output}.errors.csv" if errors else ""))
    else:
        header = score_rows.columns(scores)
        print(",".join(header))
        for r in score_rows.rows(names, scores, header):
            print(",".join(r))
    return EXIT_OK


"""Batch scoring on Apache Beam: ``fanogan beam-score``.

Arguments this parser does not know are Beam pipeline options and pass through unchanged
(``--runner``, ``--direct_num_workers``, ``--direct_running_mode``, ``--project``, ...)."""

from __future__ import annotations

import sys

from tf_fanogan.cli.common import EXIT_OK

PASSES_UNKNOWN_OPTIONS = {"beam-score"}


def add_parsers(sub) -> dict:
    """Adds this module's subcommands; returns {name: handler}."""
    p = sub.add_parser("beam-score", allow_abbrev=False, help="score images with an exported version on Apache Beam (RunInference)",
                       description="Score images with an exported SavedModel version on Apache Beam. Any option "
                                   "not listed here is a Beam pipeline option (--runner DataflowRunner, "
                                   "--direct_num_workers 2, --direct_running_mode multi_processing, --project, "
                                   "--temp_location, ...).")
    p.add_argument("--model", required=True, help="an exported version, e.g. saved_models/fanogan/1 (every worker "
                                                  "must read it: a gs:// path on Dataflow)")
    p.add_argument("--data", required=True, action="append",
                   help="folder, glob pattern ('images/**/*.png'), file, or .txt list of paths; repeatable")
    p.add_argument("--output", required=True,
                   help="output prefix: writes <prefix>-SSSSS-of-NNNNN.<format> and <prefix>-errors-*")
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv")
    p.add_argument("--min-batch", type=int, default=None, help="RunInference's min_batch_size")
    p.add_argument("--max-batch", type=int, default=None, help="RunInference's max_batch_size")
    p.add_argument("--num-shards", type=int, default=0, help="output shards (default 0: the runner chooses)")
    p.add_argument("--alpha", type=float, default=None, help="flag p_value <= ALPHA instead of the threshold")
    return {"beam-score": _beam_score}


def _beam_score(args) -> int:
    try:
        from tf_fanogan.beam.pipeline import run_score_pipeline
    except ImportError as e:
        raise OSError(f"beam-score needs Apache Beam ({e}): pip install 'tf-fanogan[beam]'") from None
    c = run_score_pipeline(args.model, args.data, args.output, args.format, args.min_batch, args.max_batch,
                           args.alpha, args.num_shards, args.pipeline_args)
    if c["state"] != "DONE":
        print(f"fanogan beam-score: the pipeline ended {c['state']}", file=sys.stderr)
        return 1
    counted = (f"scored {c['scored']} images" if c["scored"] is not None else "scored the images")
    errors = ("" if not c["errors"] else f"; {c['errors']} not scored -> {args.output}-errors-*.{args.format}")
    print(f"{counted} -> {args.output}-*.{args.format}{errors}; {c['seconds']:.1f} s")
    return EXIT_OK

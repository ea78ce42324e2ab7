"""Reliability figures: epochs lost per SIGKILL, partial artefacts after killed writers,
bad-input cases, failed requests and latency under load with version swaps.

Runs the reliability tests (they do the real kills, writes and load) with
``TF_FANOGAN_RELIABILITY_REPORT`` set, collects the figures they measured, prints them and
rewrites the ``reliability`` section of BENCHMARKS.md.

    python -m benchmarks.reliability
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from benchmarks._report import ROOT, machine, write_section  # noqa: E402

TESTS = ["tests/test_reliability.py", "tests/test_bad_input.py", "tests/serving/test_server_load.py",
         "tests/serving/test_grpc_service.py::test_error_codes_match_tf_serving",
         "tests/serving/test_rest.py::test_rest_failures_are_json_errors_with_tf_serving_codes",
         "tests/serving/test_grpc_service.py::test_grpc_bad_inputs_say_what_is_wrong",
         "tests/serving/test_server.py::test_version_swap_broken_version_and_warmup",
         "tests/serving/test_export.py::test_parity_across_formats_and_paths"]


def parity_table(rows: list[dict]) -> str:
    """Formats x paths: the largest relative difference of anomaly_score from ``FAnoGAN.score``
    on the same file (every decision equal, else the test fails), or the refusal."""
    if not rows:
        return "(the parity test reported nothing)"
    formats = list(dict.fromkeys(r["format"] for r in rows))
    paths = list(dict.fromkeys(r["path"] for r in rows))
    cell = {(r["format"], r["path"]): r["result"] for r in rows}
    lines = ["| file format | " + " | ".join(paths) + " |", "|---" * (len(paths) + 1) + "|"]
    lines += [f"| {f} | " + " | ".join(cell.get((f, p), "—") for p in paths) + " |" for f in formats]
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one reporting test only (smoke run; no BENCHMARKS.md)")
    args = p.parse_args(argv)
    tests = ["tests/serving/test_grpc_service.py::test_error_codes_match_tf_serving"] if args.quick else TESTS
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    os.close(fd)
    env = {**os.environ, "TF_FANOGAN_RELIABILITY_REPORT": path, "TF_CPP_MIN_LOG_LEVEL": "3",
           "FANOGAN_LOAD_REQUESTS": "200"}  # the full load (the default suite sends 50 per client)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", *tests]  # both tiers
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
    print(summary)
    figures, cases = {}, {}
    for line in open(path):
        row = json.loads(line)
        name = row.pop("test")
        figures[name] = row
        cases.setdefault(name, []).append(row)  # per-case tests report one row per passed case
    os.remove(path)
    print(json.dumps(figures, indent=2))
    if run.returncode != 0:
        print(run.stdout[-4000:])
        return 1
    kill, writers, bad, load = (figures.get(k, {}) for k in
                                ("resume_after_sigkill", "killed_writers", "bad_input_api_cli", "server_load"))
    md = f"""## Reliability (`python -m benchmarks.reliability`)

Command: `python -m benchmarks.reliability` (runs {', '.join(f'`{t}`' for t in TESTS)} and collects what they
measured). Machine: {machine()}. pytest: {summary}.

| what | measured | target |
|---|---|---|
| completed epochs lost per SIGKILL of `fanogan train` (stage 1 / stage 2) | {kill.get('epochs_lost_stage1')} / {kill.get('epochs_lost_stage2')} | ≤ 1 |
| partial artefacts seen after {writers.get('kills')} SIGKILLed writers (detector save, score CSV, SavedModel export) | {writers.get('partial_artefacts_seen')} | 0 |
| bad-input cases through the Python API and the CLI, passed / tried | {bad.get('passed')} / {bad.get('tried')} | all |
| bad REST requests answered with TF Serving's JSON error and code, passed / tried | {len(cases.get('bad_input_rest', []))} / {figures.get('bad_input_rest', {}).get('of')} | all |
| bad gRPC inputs refused with INVALID_ARGUMENT saying what is wrong, passed / tried | {len(cases.get('bad_input_grpc', []))} / {figures.get('bad_input_grpc', {}).get('of')} | all |
| gRPC error-code table (no spec, no name, unknown model/version/label/signature/input/output, wrong dtype and shape), cases passed | {figures.get('bad_input_grpc_codes', {}).get('cases')} | all |
| bad-input cases in all (API, CLI, REST, gRPC; each followed by a good request that works) | {(bad.get('passed') or 0) + len(cases.get('bad_input_rest', [])) + len(cases.get('bad_input_grpc', [])) + (figures.get('bad_input_grpc_codes', {}).get('cases') or 0)} | ≥ 60 |
| REST not-JSON / too-large bodies | passed (see the tests above) | all |
| failed requests: {load.get('clients')} clients × {load.get('requests', 0) // max(load.get('clients', 1) or 1, 1)} requests, version 2 published (1 retired) and a broken version 3 mid-run | {load.get('failed')} of {load.get('requests')} | 0 |
| latency under that load, p50 / p99 (16×16 test model, server in the test process) | {load.get('p50_ms')} / {load.get('p99_ms')} ms | — |
| throughput under that load | {load.get('requests_per_s')} requests/s | — |

Parity across formats and paths (`test_parity_across_formats_and_paths`): one 20×20 picture saved in
each format the in-process reader takes, scored by each path; each cell is the relative difference of
its anomaly score from `FAnoGAN.score` on the same file (the decision `is_anomaly` is equal in every
scored cell, or the test fails). The served graph decodes PNG, JPEG and BMP only; `fanogan query`
sends TIFF as lossless PNG.

{parity_table(cases.get('parity', []))}
"""
    if args.quick:
        print(md)
        return 0
    write_section("reliability", md)
    print("wrote the reliability section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which Python versions the package runs on: a subset of the suite in each given interpreter.

CI runs one Python (3.11). This runs the fast, broad tests (config, data, scoring rows, p-values,
the detector, serving, Beam) in virtual environments of other Pythons that have the project
installed (``python3.X -m venv V && V/bin/pip install -e '.[dev]'``), and records the pytest
summary and the versions the resolver picked.

    python -m benchmarks.pythons --python /tmp/venv3.10/bin/python --python /tmp/venv3.13/bin/python --record
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks._report import ROOT, machine, write_section

SUBSET = ["tests/test_config.py", "tests/test_data.py", "tests/test_rows.py", "tests/test_pvalues.py",
          "tests/test_detector.py", *(f"tests/serving/test_{m}.py" for m in  # what was tests/test_serving.py
                                      ("export", "grpc_service", "tensors", "client", "rest", "server", "query")),
          "tests/test_beam.py"]
VERSIONS = ("import sys, tensorflow as t, keras as k, google.protobuf as p, numpy as n, grpc as g\n"
            "try:\n import apache_beam as b; bv = b.__version__\nexcept ImportError:\n bv = '-'\n"
            "print(sys.version.split()[0], t.__version__, k.__version__, p.__version__, n.__version__, "
            "g.__version__, bv)")


def run(python: str, subset=SUBSET) -> dict:
    import os

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PATH": os.path.dirname(os.path.abspath(python)) + os.pathsep + os.environ.get("PATH", "")}
    env.pop("VIRTUAL_ENV", None)
    versions = subprocess.run([python, "-c", VERSIONS], capture_output=True, text=True, env=env).stdout.split()
    t = time.perf_counter()
    proc = subprocess.run([python, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-m", "", "-n", "2",
                           "--dist", "loadfile", *subset], cwd=ROOT, capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if line.startswith("FAILED ")]
    return {"versions": versions, "summary": lines[-1] if lines else proc.stderr[-300:], "rc": proc.returncode,
            "seconds": time.perf_counter() - t, "failed": failed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", action="append", help="an interpreter with the project installed")
    p.add_argument("--record", action="store_true")
    p.add_argument("--quick", action="store_true", help="this interpreter, tests/test_config.py only (smoke run; "
                   "no BENCHMARKS.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.python, args.record = args.python or [sys.executable], False
    elif not args.python:
        p.error("give at least one --python")
    rows = []
    for python in args.python:
        r = run(python, ["tests/test_config.py"] if args.quick else SUBSET)
        print(python, r["versions"], r["summary"], flush=True)
        v = r["versions"] + ["?"] * (7 - len(r["versions"]))
        rows.append(f"| {v[0]} | {v[1]} | {v[2]} | {v[3]} | {v[4]} | {v[5]} | {v[6]} | {r['summary']}"
                    + (f"; failed: {', '.join(f'`{t}`' for t in r['failed'])}" if r["failed"] else "") + " |")
    if args.record:
        write_section("pythons", f"""## Python versions

Command: `python -m benchmarks.pythons --python <venv>/bin/python ... --record`. Machine: {machine()}.
CI runs Python 3.11 (the whole suite). Here, in virtual environments of other Pythons with
`pip install -e '.[dev]'` (what the resolver picked is shown), a subset of the suite:
{', '.join(f'`{t}`' for t in SUBSET)}.

| Python | TensorFlow | Keras | protobuf | NumPy | grpcio | Beam | subset of the suite |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
""")
        print("wrote the pythons section of BENCHMARKS.md")
    return 0 if all("failed" not in r and "error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

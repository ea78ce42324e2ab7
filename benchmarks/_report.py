"""Shared by the benchmarks: the machine's description and BENCHMARKS.md section updates.

Each benchmark owns one section of BENCHMARKS.md between ``<!-- name:start -->`` and
``<!-- name:end -->`` markers and rewrites only that section, so benchmarks run at different
times (and on different machines, which each section states) can share the file.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_MD = os.path.join(ROOT, "BENCHMARKS.md")
HEADER = ("# Benchmarks\n\nEvery figure here was printed by a script in `benchmarks/` in one run on the machine "
          "named in its section; rerun the command shown to reproduce it. Medians of repeated runs; ratios are "
          "taken within one run.\n")


def machine() -> str:
    """CPU model, logical cores, memory, GPU (if any), Python/TF/Keras versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = "no GPU"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            gpu = out.stdout.strip().replace("\n", ", ")
    except (OSError, subprocess.SubprocessError):
        pass
    import keras
    import tensorflow as tf

    return (f"{cpu}, {cores} cores available{mem}, {gpu}; Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


def timings(fn, reps: int, warmup: int = 0):
    """Calls ``fn`` ``warmup`` times untimed (tracing, caches), then ``reps`` times; returns
    ``(result of the last call, seconds of each timed call)``."""
    out = None
    for _ in range(warmup):
        out = fn()
    seconds = []
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t)
    return out, seconds


def percentile(values, q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def median(values) -> float:
    return statistics.median(values)


def write_section(name: str, markdown: str, path: str = BENCHMARKS_MD) -> None:
    """Replaces (or appends) the ``name`` section of BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = open(path).read() if os.path.exists(path) else HEADER
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)

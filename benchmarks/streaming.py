"""Streaming `fanogan score` at volume: peak memory at 7 000 and 70 000 images must not grow.

Writes N synthetic 8-bit PNGs (the model's size, so decoding, not resizing, is measured), a
small calibrated detector, and runs `fanogan score` on lists of the first 7 000 and all
70 000 files, each in its own process; peak RSS comes from that process's own rusage
(``os.wait4``), throughput from its wall time. Also kills one run part-way and resumes it,
checking the resumed CSV equals the uninterrupted one.

    python -m benchmarks.streaming --record
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.synthetic import make_detector, make_images


def run_score(detector: str, data: str, output: str, batch: int, kill_after_rows: int | None = None):
    """Runs `fanogan score` in its own process; returns (seconds, peak RSS MiB, killed)."""
    cmd = [sys.executable, "-m", "tf_fanogan.cli", "score", detector, "--data", data, "--output", output,
           "--batch-size", str(batch)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    killed, partial = False, output + ".partial"
    while True:  # wait4 (not Popen.poll, which would reap the child and lose its rusage)
        pid, status, usage = os.wait4(p.pid, 0 if kill_after_rows is None else os.WNOHANG)
        if pid:
            break
        if os.path.exists(partial) and os.path.getsize(partial) > 0:
            with open(partial, "rb") as f:
                if f.read().count(b"\n") > kill_after_rows:
                    os.kill(p.pid, signal.SIGKILL)
                    killed = True
                    _, status, usage = os.wait4(p.pid, 0)
                    break
        time.sleep(0.2)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    seconds = time.perf_counter() - t
    if not killed and os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with status {status}")
    return seconds, usage.ru_maxrss / 1024, killed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=70000)
    p.add_argument("--small", type=int, default=7000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--record", action="store_true")
    p.add_argument("--quick", action="store_true", help="300 images, 16x16, width 8, no XLA (smoke run; no BENCHMARKS.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.small, args.size, args.dim, args.batch, args.record = 300, 300, 16, 8, 64, False
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = make_images(os.path.join(tmp, "images"), args.n, args.size)
        print(f"wrote {len(paths)} PNGs in {time.perf_counter() - t:.0f} s", flush=True)
        make_detector(os.path.join(tmp, "det"), args.size, args.dim, jit=not args.quick)
        lists = {}
        for n in (args.small, args.n):
            lists[n] = os.path.join(tmp, f"list{n}.txt")
            with open(lists[n], "w") as f:
                f.write("\n".join(paths[:n]) + "\n")
        results = {}
        for n in sorted({args.small, args.n}):
            sec, rss, _ = run_score(os.path.join(tmp, "det"), lists[n], os.path.join(tmp, f"s{n}.csv"), args.batch)
            rows = sum(1 for _ in open(os.path.join(tmp, f"s{n}.csv"))) - 1
            results[n] = (sec, rss, rows)
            print(f"{n} images: {sec:.1f} s ({rows / sec:.0f} images/s including start-up), peak RSS {rss:.0f} MiB, "
                  f"{rows} rows", flush=True)
        # Kill the small run part-way, resume it, compare with the uninterrupted CSV.
        out = os.path.join(tmp, "resumed.csv")
        _, _, killed = run_score(os.path.join(tmp, "det"), lists[args.small], out, args.batch,
                                 kill_after_rows=args.small // 2)
        partial_rows = sum(1 for _ in open(out + ".partial")) - 1 if killed else None
        run_score(os.path.join(tmp, "det"), lists[args.small], out, args.batch)
        same = open(out).read() == open(os.path.join(tmp, f"s{args.small}.csv")).read()
        print(f"killed after {partial_rows} rows, resumed: identical to the uninterrupted CSV: {same}", flush=True)
    (s_sec, s_rss, s_rows), (l_sec, l_rss, l_rows) = results[args.small], results[args.n]
    if args.record:
        from benchmarks._report import machine, write_section

        write_section("streaming", f"""## Streaming scoring: memory at 7 000 vs 70 000 images

Command: `python -m benchmarks.streaming --record`. Machine: {machine()}.
`fanogan score` over a `.txt` list of synthetic {args.size}×{args.size} 8-bit PNGs with a {args.size}×{args.size}, width-{args.dim}
detector, batch {args.batch}, each run in its own process (peak RSS from its own rusage; time includes
process start-up and the TensorFlow import). One run each.

| images | wall time | images/s | peak RSS | rows written |
|---|---|---|---|---|
| {args.small:,} | {s_sec:.1f} s | {s_rows / s_sec:.0f} | {s_rss:.0f} MiB | {s_rows:,} |
| {args.n:,} | {l_sec:.1f} s | {l_rows / l_sec:.0f} | {l_rss:.0f} MiB | {l_rows:,} |

Peak RSS ratio {args.n:,} / {args.small:,}: **{l_rss / s_rss:.3f}** (flat memory means ≈ 1). A run SIGKILLed after
{partial_rows} rows and rerun resumed to a CSV {'identical' if same else 'DIFFERENT'} to the uninterrupted one.
""")
        print("wrote the streaming section of BENCHMARKS.md")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

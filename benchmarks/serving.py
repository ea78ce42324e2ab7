"""Served vs in-process scoring: gRPC round-trip overhead and concurrent throughput.

Measures, in one run on one machine, for the paper configuration (64x64x1, dim 64, latent 128)
unless told otherwise:

* latency of scoring one image (p50, p99): the Keras detector in process, the exported
  SavedModel run in process through the session loader (the graph the server runs), and the
  same through ``fanogan serve`` (a separate process) with the gRPC client;
* throughput at batch 64 with 8 concurrent clients: in process (8 threads on the SavedModel
  session) vs served (8 client threads, each with its own channel), images/s;
* batch-1 requests from 8 concurrent clients served without and with server-side batching
  (``--enable_batching`` with the shipped ``serving/batching_parameters.txt``).

Weights are untrained (speed does not depend on their values); the detector is calibrated on
noise only so that it can be exported. Prints the figures and rewrites the ``serving`` section
of BENCHMARKS.md.

    python -m benchmarks.serving                # paper config, a few minutes on 2 cores
    python -m benchmarks.serving --quick        # tiny config, seconds (smoke run; no BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks._report import ROOT, machine, median, percentile, timings, write_section  # noqa: E402


def build_detector(image_size: int, dim: int, latent_dim: int, seed: int):
    from tf_fanogan import FAnoGAN, FAnoGANConfig, ModelConfig

    cfg = FAnoGANConfig(model=ModelConfig(image_size=image_size, channels=1, dim=dim, latent_dim=latent_dim), seed=seed)
    fresh = FAnoGAN(cfg)  # untrained weights: timing only
    det = FAnoGAN.from_networks(cfg, *fresh.networks.values())
    rng = np.random.default_rng(seed)
    det.calibrate(rng.uniform(size=(64, image_size, image_size, 1)).astype(np.float32), fpr=0.05)
    return det


# VmHWM (peak RSS of this process image), not ru_maxrss: Linux carries ru_maxrss across exec,
# so a child of a big parent would report the parent's size.
_IMPORT_PROBE = """
import sys, time
t = time.perf_counter()
import {module}
dt = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(dt, hwm / 1024, "tensorflow.python" in sys.modules)
"""


def import_cost(module: str, reps: int = 3) -> tuple[float, float, bool]:
    """(median seconds, peak RSS MiB, loaded the TF runtime) of importing ``module`` in a fresh interpreter."""
    runs = []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE.format(module=module)], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
        t, rss, tf_loaded = out.stdout.split()
        runs.append((float(t), float(rss), tf_loaded == "True"))
    return median([r[0] for r in runs]), median([r[1] for r in runs]), any(r[2] for r in runs)


def concurrent(make_worker, clients: int, requests: int, images_per_request: int) -> float:
    """Images/s with ``clients`` threads each making ``requests`` calls."""
    workers = [make_worker() for _ in range(clients)]
    errors = []
    barrier = threading.Barrier(clients + 1)

    def run(work):
        barrier.wait()
        try:
            for _ in range(requests):
                work()
        except Exception as e:  # reported, never swallowed
            errors.append(e)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed calls, first: {errors[0]!r}")
    return clients * requests * images_per_request / elapsed


class ServerProcess:
    """``fanogan serve`` in a subprocess on a free port."""

    def __init__(self, base: str, batching_file: str | None = None):
        cmd = [sys.executable, "-m", "tf_fanogan.cli", "serve", "--model_name", "fanogan",
               "--model_base_path", base, "--port", "0", "--rest_api_port", "-1",
               "--file_system_poll_wait_seconds", "0"]
        if batching_file:
            cmd += ["--enable_batching", "--batching_parameters_file", batching_file]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        m = re.search(r"gRPC (\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.target = m.group(1).rstrip(",")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--latent-dim", type=int, default=128)
    p.add_argument("--latency-reps", type=int, default=200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=1, help="requests per client per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny config and counts; does not write BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.image_size, args.dim, args.latency_reps, args.requests, args.rounds = 16, 8, 20, 2, 1

    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.client import FAnoGANClient
    from tf_fanogan.serving.servable import Servable

    imports = {m: import_cost(m) for m in ("tf_fanogan.serving.client", "tensorflow")}
    for m, (t, rss, tf_loaded) in imports.items():
        print(f"import {m}: {t:.2f} s, peak RSS {rss:.0f} MiB, TF runtime loaded: {tf_loaded}")
    det = build_detector(args.image_size, args.dim, args.latent_dim, args.seed)
    tmp = tempfile.mkdtemp(prefix="bench_serving_")
    path = export_detector(det, tmp, "fanogan")
    base = os.path.dirname(path)
    servable = Servable(path)
    servable.warmup()
    rng = np.random.default_rng(args.seed)
    one = rng.uniform(size=(1, args.image_size, args.image_size, 1)).astype(np.float32)
    batch = rng.uniform(size=(args.batch, args.image_size, args.image_size, 1)).astype(np.float32)
    shape = f"{args.image_size}x{args.image_size}x1, dim {args.dim}, latent {args.latent_dim}"
    print(f"machine: {machine()}\nconfig: {shape}", flush=True)

    # Same-run parity check, so the figures compare like with like.
    server = ServerProcess(base)
    try:
        client = FAnoGANClient(server.target, "fanogan", timeout=300)
        client.wait_until_available(120)
        served = client.score(batch[:8])["anomaly_score"]
        local = det.score(batch[:8])["anomaly_score"]
        max_diff = float(np.max(np.abs(served - local)))
        print(f"parity served vs in-process (8 images): max |diff| {max_diff:.2e}")

        for fn in (lambda: det.score(one), lambda: servable.run("score", {"images": one}), lambda: client.score(one)):
            timings(fn, 0, warmup=5)
        lat = {"detector": timings(lambda: det.score(one), args.latency_reps)[1],
               "savedmodel": timings(lambda: servable.run("score", {"images": one}), args.latency_reps)[1],
               "grpc": timings(lambda: client.score(one), args.latency_reps)[1]}
        for k, v in lat.items():
            print(f"latency 1 image {k:>10}: p50 {1e3 * median(v):7.2f} ms  p99 {1e3 * percentile(v, 99):7.2f} ms")

        def in_process_worker():
            return lambda: servable.run("score", {"images": batch})

        def served_worker():
            c = FAnoGANClient(server.target, "fanogan", timeout=300)
            c.signatures()
            return lambda: c.score(batch)

        thr = {"in_process": [], "served": []}
        for r in range(args.rounds):  # interleaved so drift hits both alike
            thr["in_process"].append(concurrent(in_process_worker, args.clients, args.requests, args.batch))
            thr["served"].append(concurrent(served_worker, args.clients, args.requests, args.batch))
            print(f"round {r + 1}: batch {args.batch} x {args.clients} clients: in-process "
                  f"{thr['in_process'][-1]:.1f} img/s, served {thr['served'][-1]:.1f} img/s", flush=True)

        def served_one_worker():
            c = FAnoGANClient(server.target, "fanogan", timeout=300)
            c.signatures()
            return lambda: c.score(one)

        one_requests = max(args.requests * 4, 8)
        unbatched = [concurrent(served_one_worker, args.clients, one_requests, 1) for _ in range(args.rounds)]
        client.close()
    finally:
        server.close()
    server = ServerProcess(base, os.path.join(ROOT, "serving", "batching_parameters.txt"))
    try:
        FAnoGANClient(server.target, "fanogan", timeout=300).wait_until_available(120)
        batched = [concurrent(served_one_worker, args.clients, one_requests, 1) for _ in range(args.rounds)]
    finally:
        server.close()
    servable.close()

    ratio = median(thr["served"]) / median(thr["in_process"])
    over50 = 1e3 * (median(lat["grpc"]) - median(lat["savedmodel"]))
    over99 = 1e3 * (percentile(lat["grpc"], 99) - percentile(lat["savedmodel"], 99))
    print(f"gRPC overhead over in-process SavedModel, 1 image: p50 {over50:+.2f} ms, p99 {over99:+.2f} ms")
    print(f"throughput served / in-process at batch {args.batch}, {args.clients} clients: {ratio:.3f} "
          f"(goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    print(f"batch-1 requests, {args.clients} clients: served {median(unbatched):.1f} img/s, with server-side "
          f"batching {median(batched):.1f} img/s ({median(batched) / median(unbatched):.2f}x)")
    if args.quick:
        return 0

    ms = lambda v: f"{1e3 * v:.2f}"  # noqa: E731
    md = f"""## Serving: gRPC vs in-process (`python -m benchmarks.serving`)

Command: `python -m benchmarks.serving` (model {shape}; untrained weights — speed does not depend on
them). Machine: {machine()}. Server: `fanogan serve` in its own process on 127.0.0.1, client
`FAnoGANClient` (gRPC, real TF Serving protos). Served and in-process scores agree to {max_diff:.1e}.

| one 64×64 image, {args.latency_reps} calls | p50 (ms) | p99 (ms) |
|---|---|---|
| Keras detector in process (`FAnoGAN.score`) | {ms(median(lat['detector']))} | {ms(percentile(lat['detector'], 99))} |
| SavedModel in process (session loader, the graph the server runs) | {ms(median(lat['savedmodel']))} | {ms(percentile(lat['savedmodel'], 99))} |
| served over gRPC (`FAnoGANClient.score`) | {ms(median(lat['grpc']))} | {ms(percentile(lat['grpc'], 99))} |
| **gRPC round-trip overhead** (served − SavedModel in process) | **{over50:+.2f}** | **{over99:+.2f}** |

| throughput, {args.clients} concurrent clients | images/s (median of {args.rounds} rounds) |
|---|---|
| batch {args.batch}, in process (8 threads on the session) | {median(thr['in_process']):.1f} |
| batch {args.batch}, served over gRPC | {median(thr['served']):.1f} |
| **served / in-process** (goal ≥ 0.80) | **{ratio:.3f}** ({'met' if ratio >= 0.8 else 'not met'}) |
| batch 1, served, no server-side batching | {median(unbatched):.1f} |
| batch 1, served, `--enable_batching` (shipped `batching_parameters.txt`) | {median(batched):.1f} ({median(batched) / median(unbatched):.2f}×) |

Importing the client (`import tf_fanogan.serving.client`, fresh interpreter, median of 3): \
{imports['tf_fanogan.serving.client'][0]:.2f} s and {imports['tf_fanogan.serving.client'][1]:.0f} MiB peak RSS, TF runtime loaded: \
{imports['tf_fanogan.serving.client'][2]}; `import tensorflow` for comparison: {imports['tensorflow'][0]:.2f} s and \
{imports['tensorflow'][1]:.0f} MiB.

Rounds (batch {args.batch}): in process {', '.join(f'{v:.1f}' for v in thr['in_process'])}; served \
{', '.join(f'{v:.1f}' for v in thr['served'])} images/s. The client and the server share the machine's cores, \
as they would on one host. Server-side batching cannot raise throughput where a batch of 64 is no \
faster per image than a batch of 1, as on this CPU; it is for accelerators.
"""
    write_section("serving", md)
    print("wrote the serving section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training and scoring speed of f-AnoGAN: images/s, XLA on/off, float32 vs mixed precision, vs iterative AnoGAN.

For each configuration (``small``: 32x32x1, dim 16; ``paper``: 64x64x1, dim 64, latent 128)
it measures, each in a fresh process (so peak RSS is per configuration):

* stage-1 (WGAN-GP) training images/s -- one generator update with its ``critic_steps``
  critic updates counts ``batch * critic_steps`` real images -- and stage-2 (izi_f encoder)
  training images/s, through ``keras.Model.fit`` on an in-memory ``tf.data`` pipeline, with
  ``jit_compile`` off and on (and ``mixed_float16`` where a GPU is present); median of the
  timed epochs after one warm-up epoch that holds the tracing and compilation;
* scoring images/s of the one scoring function at batch 1 and over a batch sweep (XLA off
  and on), median of repeated passes after a warm-up;
* the FLOP-bound scoring rate: the scoring graph's float operations per image (TF profiler on
  the frozen graph) against a measured float32 matmul peak of this machine;
* iterative AnoGAN mapping (``IterativeMapping``: Adam on z, batched, one compiled graph),
  images/s and the speed-up of the encoder mapping at the same batch size.

    python -m benchmarks.speed [--record] [--configs small,paper]

Writes the ``speed`` section of BENCHMARKS.md with ``--record``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks._report import machine, median, write_section  # noqa: E402

CONFIGS = {
    # name: model, stage-1 batch (per critic update), stage-2 batch, timed epochs of steps
    "small": dict(image_size=32, dim=16, latent_dim=128, gan_batch=32, enc_batch=64, steps=4, epochs=3,
                  score_batches=[1, 16, 64, 256, 1024], score_images=2048, iter_batches=[64],
                  memory_size=8192),
    # On 2 CPU cores one paper-size scoring pass costs ~14 GFLOP per image and one 300-step
    # iterative search ~7 TFLOP, so the CPU run keeps these small.
    "paper": dict(image_size=64, dim=64, latent_dim=128, gan_batch=8, enc_batch=16, steps=1, epochs=2,
                  score_batches=[1, 8, 32], score_images=32, iter_batches=[1, 8],
                  memory_size=8192),
    # --quick: a smoke run of every measurement (the suite's test), not a figure to quote
    "quick": dict(image_size=16, dim=8, latent_dim=16, gan_batch=4, enc_batch=4, steps=1, epochs=1,
                  score_batches=[1, 8], score_images=16, iter_batches=[2], jit=(False,),
                  memory_size=64),
}
GPU_OVERRIDES = {  # larger batches where a GPU is present
    "small": dict(gan_batch=64, enc_batch=64, steps=20, epochs=3, score_batches=[1, 64, 256, 1024, 4096],
                  score_images=16384, iter_batches=[256]),
    "paper": dict(gan_batch=64, enc_batch=64, steps=10, epochs=3, score_batches=[1, 64, 256, 1024, 2048],
                  score_images=8192, iter_batches=[256]),
}
ITERATIVE_STEPS = 300


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._t)
            self.last_logs = dict(logs or {})

    return EpochTimer()


def matmul_peak(reps=10, n=2048):
    """Measured float32 matmul rate (FLOP/s) of this machine, median of ``reps`` products."""
    import tensorflow as tf

    a = tf.random.normal((n, n)); b = tf.random.normal((n, n))
    f = tf.function(lambda a, b: tf.matmul(a, b))
    f(a, b).numpy()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); f(a, b).numpy(); times.append(time.perf_counter() - t)
    return 2 * n ** 3 / median(times)


def scoring_flops(generator, critic, encoder, shape):
    """Float operations of one image's scoring (TF profiler over the frozen batch-1 graph)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    from tensorflow.python.profiler import model_analyzer, option_builder

    from tf_fanogan.scoring import forward as scoring

    fn = tf.function(lambda x: scoring.score_batch(generator, critic, encoder, x, 1.0)["anomaly_score"])
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(tf.TensorSpec((1,) + shape, tf.float32)))
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(model_analyzer.profile(frozen.graph, options=opts).total_float_ops)


def _passes(fn, images, calls, reps=3):
    """Median seconds per image of ``reps`` passes of ``calls`` calls (after one warm-up call, which
    holds the tracing / compilation for this shape); ``fn`` returns a tensor or a dict of them."""
    import tensorflow as tf

    [t.numpy() for t in tf.nest.flatten(fn(images))]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            r = fn(images)
        [t.numpy() for t in tf.nest.flatten(r)]
        times.append((time.perf_counter() - t0) / (calls * len(images)))
    return median(times)


def _critic_nn_rate(g, cr, e, shape, batch, c, rng, jit) -> dict:
    """``scoring.method: critic_nn`` against the paper's score at the same batch, timed in turn on
    the same images: the memory is ``memory_size`` random feature rows of the critic's width
    (the distance costs the same whatever the rows hold). Both fetch every output of the
    ``score`` signature: fetching only the anomaly score would let TF prune G(E(x)) from the
    critic_nn graph, which no score endpoint does."""
    import numpy as np
    import tensorflow as tf

    from tf_fanogan.scoring import forward as scoring
    from tf_fanogan import signatures as sig
    from tf_fanogan.scoring.memory import centred

    n_features = int(cr(tf.zeros((1,) + shape))[1].shape[-1])
    memory = tuple(tf.constant(a) for a in centred(
        rng.normal(size=(c["memory_size"], n_features)).astype(np.float32)))

    def endpoint(**kw):
        def score(v):
            out = scoring.score_batch(g, cr, e, v, 1.0, **kw)
            return {k: out[k] for k in sig.SCORE_OUTPUTS}

        return tf.function(score, jit_compile=jit)

    paper, nn = endpoint(), endpoint(memory=memory)
    images = tf.constant(rng.uniform(-1, 1, (batch,) + shape).astype(np.float32))
    calls = max(1, min(c["score_images"] // batch, 256))
    # interleaved, so that neither is favoured by when it runs (5 passes of each, medians)
    times = [[_passes(f, images, calls, reps=1) for f in (paper, nn)] for _ in range(5)]
    paper_s, nn_s = median([t[0] for t in times]), median([t[1] for t in times])
    return {"memory_size": c["memory_size"], "features": n_features, "batch": batch,
            "images_per_s": 1 / nn_s, "paper_images_per_s_same_run": 1 / paper_s, "time_ratio": nn_s / paper_s}


def run_config(name: str, precision: str, gpu: bool) -> dict:
    """One configuration and precision, in this process."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_fanogan import ModelConfig
    from tf_fanogan.scoring import forward as scoring
    from tf_fanogan.paper.baselines import IterativeMapping
    from tf_fanogan.models.networks import dtype_policy
    from tf_fanogan.models.encoder_trainer import EncoderTrainer
    from tf_fanogan.models.networks import build_networks
    from tf_fanogan.training.pipeline import training_dataset
    from tf_fanogan.models.wgan_gp import WGANGP

    c = dict(CONFIGS[name], **(GPU_OVERRIDES.get(name, {}) if gpu else {}))
    model = ModelConfig(image_size=c["image_size"], channels=1, dim=c["dim"], latent_dim=c["latent_dim"])
    shape = model.image_shape
    rng = np.random.default_rng(0)
    out = {"config": name, "precision": precision, "model": [c["image_size"], c["dim"], c["latent_dim"]],
           "gan_batch": c["gan_batch"], "enc_batch": c["enc_batch"], "critic_steps": 5}
    n_train = max(c["gan_batch"] * 5 * c["steps"], c["enc_batch"] * c["steps"])
    x = rng.uniform(-1, 1, (n_train,) + shape).astype(np.float32)

    for jit in c.get("jit", (False, True)):  # the quick smoke run leaves out the XLA compiles
        key = "xla" if jit else "no_xla"
        keras.utils.set_random_seed(0)
        with dtype_policy(precision):
            g, cr, e = build_networks(model)
            gan = WGANGP(g, cr, critic_steps=5, seed=0)
            gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9),
                        c_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9), jit_compile=jit)
        timer = _epoch_timer()
        gan.fit(training_dataset(x, c["gan_batch"] * 5, 0), epochs=1 + c["epochs"], steps_per_epoch=c["steps"],
                verbose=0, callbacks=[timer])
        t = median(timer.times[1:])
        out[f"stage1_{key}"] = {"images_per_s": c["steps"] * c["gan_batch"] * 5 / t,
                                "s_per_generator_update": t / c["steps"],
                                "losses_finite": bool(all(np.isfinite(v) for v in timer.last_logs.values())),
                                "w_dist": float(timer.last_logs.get("w_dist", float("nan")))}
        with dtype_policy(precision):
            trainer = EncoderTrainer(g, cr, e, mode="izi_f", kappa=1.0, seed=0)
            trainer.compile(optimizer=keras.optimizers.RMSprop(5e-5, rho=0.9, epsilon=1e-10), jit_compile=jit)
        timer = _epoch_timer()
        trainer.fit(training_dataset(x, c["enc_batch"], 0), epochs=1 + c["epochs"], steps_per_epoch=c["steps"],
                    verbose=0, callbacks=[timer])
        t = median(timer.times[1:])
        out[f"stage2_{key}"] = {"images_per_s": c["steps"] * c["enc_batch"] / t}
        print(f"[{name} {precision} {key}] stage 1 {out[f'stage1_{key}']['images_per_s']:.1f} img/s, "
              f"stage 2 {out[f'stage2_{key}']['images_per_s']:.1f} img/s", flush=True)

        fn = tf.function(lambda v: scoring.score_batch(g, cr, e, v, 1.0)["anomaly_score"], jit_compile=jit)
        sweep = {}
        for bs in c["score_batches"]:
            images = tf.constant(rng.uniform(-1, 1, (bs,) + shape).astype(np.float32))
            sweep[bs] = 1.0 / _passes(fn, images, max(1, min(c["score_images"] // bs, 256)))
        best = max(sweep, key=sweep.get)
        out[f"score_{key}"] = {"batch1_images_per_s": sweep[min(sweep)], "best_batch": best,
                               "best_images_per_s": sweep[best], "sweep": sweep}
        print(f"[{name} {precision} {key}] scoring batch 1: {sweep[min(sweep)]:.1f} img/s, best "
              f"{sweep[best]:.1f} img/s at batch {best}", flush=True)
        out[f"critic_nn_{key}"] = _critic_nn_rate(g, cr, e, shape, best, c, rng, jit)
        print(f"[{name} {precision} {key}] critic_nn scoring (memory {c['memory_size']}) at batch {best}: "
              f"{out[f'critic_nn_{key}']['images_per_s']:.1f} img/s, "
              f"{out[f'critic_nn_{key}']['time_ratio']:.2f}x the paper score's time", flush=True)
        if jit:
            continue
        # Iterative AnoGAN at the same batch as the encoder mapping it is compared with: one batch of
        # images per batch size (the search's cost does not depend on the pixel values).
        mapper = IterativeMapping(g, cr, steps=ITERATIVE_STEPS, kappa=1.0)
        out["iterative"] = []
        for ib in c["iter_batches"]:
            imgs01 = rng.uniform(0, 1, (ib,) + shape).astype(np.float32)
            mapper(imgs01, batch_size=ib)  # trace for this batch shape
            t0 = time.perf_counter(); mapper(imgs01, batch_size=ib); it_s = (time.perf_counter() - t0) / ib
            enc_s = _passes(fn, tf.constant(imgs01 * 2 - 1), 5)
            out["iterative"].append({"steps": ITERATIVE_STEPS, "batch": ib, "images_per_s": 1 / it_s,
                                     "fanogan_images_per_s_same_batch": 1 / enc_s, "speedup": it_s / enc_s})
            print(f"[{name} {precision}] iterative mapping ({ITERATIVE_STEPS} steps, batch {ib}): {1 / it_s:.3f} "
                  f"img/s; encoder mapping at batch {ib} is {it_s / enc_s:.0f}x faster", flush=True)

    if precision == "float32":
        flops = scoring_flops(g, cr, e, shape)
        peak = matmul_peak()
        out["flops_per_image"] = flops
        out["matmul_peak_flops"] = peak
        out["flop_bound_images_per_s"] = peak / flops
        print(f"[{name}] scoring {flops / 1e9:.3f} GFLOP/image; matmul peak {peak / 1e9:.1f} GFLOP/s -> "
              f"FLOP bound {peak / flops:.1f} img/s", flush=True)
    if gpu:
        info = tf.config.experimental.get_memory_info("GPU:0")
        out["gpu_peak_mib"] = info["peak"] / 2 ** 20
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def vector_isa() -> str:
    """The widest x86 vector extension /proc/cpuinfo lists (oneDNN's and XLA's speeds depend on
    it: hosts sold under one CPU name differ), or "unknown"."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    return next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
                 if flag in flags), "unknown")


def _fmt(v, digits=1):
    return f"{v:,.{digits}f}"


def markdown(results: list[dict], host: str, wall: float, gpu: bool) -> str:
    lines = ["## Speed", "",
             f"Command: `python -m benchmarks.speed --record`. Machine: {host}; widest vector extension "
             f"{vector_isa()}. One run; wall time {wall / 60:.1f} min.",
             "Synthetic images (speed does not depend on pixel values). Training: `keras.Model.fit` on the "
             "package's `tf.data` pipeline, median of the timed epochs after a warm-up epoch (tracing and "
             "XLA compilation excluded); stage 1 counts batch × 5 real images per generator update. Scoring: "
             "the one scoring function in a `tf.function`, median of 3 passes. Peak RSS is per configuration "
             "(each ran in its own process).", "",
             "| config | precision | XLA | stage 1 img/s | stage 2 img/s | scoring img/s, batch 1 | scoring img/s, best (batch) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["model"]
        for key, xla in (("no_xla", "off"), ("xla", "on")):
            s = r[f"score_{key}"]
            lines.append(f"| {r['config']} ({m[0]}×{m[0]}×1, dim {m[1]}, z {m[2]}; batch {r['gan_batch']}/"
                         f"{r['enc_batch']}) | {r['precision']} | {xla} | {_fmt(r[f'stage1_{key}']['images_per_s'])} | "
                         f"{_fmt(r[f'stage2_{key}']['images_per_s'])} | {_fmt(s['batch1_images_per_s'])} | "
                         f"{_fmt(s['best_images_per_s'])} ({s['best_batch']}) |")
    lines += ["", "| config | precision | scoring GFLOP/image | matmul peak GFLOP/s | FLOP-bound img/s | "
              "best scoring / bound | iterative img/s (300 steps, batch) | encoder speed-up, same batch | peak RSS MiB |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        best = max(r["score_no_xla"]["best_images_per_s"], r["score_xla"]["best_images_per_s"])
        if "flops_per_image" in r:
            flop_cols = (f"{r['flops_per_image'] / 1e9:.3f} | {r['matmul_peak_flops'] / 1e9:.1f} | "
                         f"{_fmt(r['flop_bound_images_per_s'])} | {best / r['flop_bound_images_per_s']:.0%}")
        else:
            flop_cols = "– | – | – | –"
        lines.append(f"| {r['config']} | {r['precision']} | {flop_cols} | "
                     + "; ".join(f"{it['images_per_s']:.3f} ({it['batch']})" for it in r["iterative"]) + " | "
                     + "; ".join(f"{it['speedup']:.0f}× ({it['batch']})" for it in r["iterative"])
                     + f" | {r['peak_rss_mib']:.0f} |")
    lines += ["", "`scoring.method: critic_nn` (beyond the paper; the score is the distance of the critic's "
              "features to the nearest of a memory of normal training images, float64): a memory of random rows "
              "of the critic's feature width, timed in turn with the paper's score on the same images at the "
              "sweep's best batch, 5 passes of each, interleaved, medians; both fetch every output of the `score` signature "
              "(A, A_R, A_D, ‖E(x)‖).", "",
              "| config | precision | XLA | memory rows × features | batch | paper score img/s | critic_nn img/s | "
              "critic_nn time / paper time |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for key, xla in (("no_xla", "off"), ("xla", "on")):
            nn = r[f"critic_nn_{key}"]
            lines.append(f"| {r['config']} | {r['precision']} | {xla} | {nn['memory_size']:,} × {nn['features']:,} | "
                         f"{nn['batch']} | {_fmt(nn['paper_images_per_s_same_run'])} | {_fmt(nn['images_per_s'])} | "
                         f"{nn['time_ratio']:.2f}× |")
    lines += ["", "Targets:"]
    for r in results:
        if r["precision"] != "float32":
            continue
        xla_gain = r["stage1_xla"]["images_per_s"] / r["stage1_no_xla"]["images_per_s"]
        best = max(r["score_no_xla"]["best_images_per_s"], r["score_xla"]["best_images_per_s"])
        frac = best / r["flop_bound_images_per_s"]
        if r["config"] == "small":
            lines.append(f"- small config, XLA stage-1 step ≥ 1.3× non-XLA: {xla_gain:.2f}× "
                         f"({'met' if xla_gain >= 1.3 else 'not met'}); stage 2: "
                         f"{r['stage2_xla']['images_per_s'] / r['stage2_no_xla']['images_per_s']:.2f}×.")
        if r["config"] == "paper":
            lines.append(f"- paper config, scoring ≥ 50% of the FLOP bound: {frac:.0%} "
                         f"({'met' if frac >= 0.5 else 'not met'})." + (
                             " Above 100%: the bound comes from a 2048² float32 `tf.matmul`, and oneDNN's "
                             "convolutions run faster than that on this CPU, so the bound is conservative "
                             "(both count a multiply-add as 2 FLOPs)." if frac > 1 else ""))
        for it in r["iterative"]:
            sp = it["speedup"]
            lines.append(f"- {r['config']} config, encoder mapping ≥ 300× faster than 300-step iterative mapping "
                         f"(both at batch {it['batch']}, compiled): {sp:.0f}× ({'met' if sp >= 300 else 'not met'}).")
    if not gpu:
        lines.append("- GPU targets (mixed precision ≥ 1.8× float32 training; 70 000 paper-config images in "
                     "< 10 s): not measured, no GPU on this machine.")
    else:
        f32 = {r["config"]: r for r in results if r["precision"] == "float32"}
        for r in results:
            if r["precision"] == "mixed_float16":
                gain = r["stage1_no_xla"]["images_per_s"] / f32[r["config"]]["stage1_no_xla"]["images_per_s"]
                lines.append(f"- {r['config']}: mixed_float16 stage 1 {gain:.2f}× float32 "
                             f"({'met' if gain >= 1.8 else 'not met'}); losses finite: "
                             f"{r['stage1_no_xla']['losses_finite']}.")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default="small,paper")
    p.add_argument("--record", action="store_true", help="write the speed section of BENCHMARKS.md")
    p.add_argument("--json", help="also write the raw figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="the tiny 'quick' config only (smoke run; no BENCHMARKS.md)")
    p.add_argument("--child", nargs=2, metavar=("CONFIG", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        name, precision = args.child
        print("RESULT " + json.dumps(run_config(name, precision, _has_gpu())), flush=True)
        return 0
    if args.quick:
        args.configs, args.record = "quick", False
    t0 = time.time()
    gpu = _has_gpu()
    precisions = ["float32", "mixed_float16"] if gpu else ["float32"]
    results = []
    for name in args.configs.split(","):
        for precision in precisions:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--child", name, precision],
                                  stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                                  cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            lines = proc.stdout.splitlines()
            print("\n".join(x for x in lines if not x.startswith("RESULT ")), flush=True)
            if proc.returncode != 0:
                print(f"{name} {precision}: failed (exit {proc.returncode})", file=sys.stderr)
                return 1
            results.append(json.loads(next(x for x in lines if x.startswith("RESULT "))[7:]))
    if args.quick:  # no XLA figures to compare: the raw figures only
        print(json.dumps(results, indent=1))
        return 0
    text = markdown(results, machine(), time.time() - t0, gpu)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.record:
        write_section("speed", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

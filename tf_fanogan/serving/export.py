"""Export a detector as a SavedModel in TF Serving's versioned layout.

``<base>/<model>/<int version>/`` holds ``saved_model.pb``, ``variables/``, and
``assets.extra/`` with ``model_info.json`` and ``tf_serving_warmup_requests``. Versions are
published atomically: written under a hidden temporary name (TF Serving ignores names that
do not parse as int64), then renamed.

Signatures (names in :mod:`tf_fanogan.signatures`; every output batch-major):

* ``score`` (= ``serving_default``): ``images`` float32 (N, H, W, C) in [0, 1] ->
  ``anomaly_score`` (A_R + kappa * A_D; with ``scoring.method: critic_nn`` the critic-feature
  distance to the nearest normal training image, the memory stored once in ``variables/``),
  ``residual_score``, ``feature_score``, ``z_distance`` (float32), ``p_value`` (float32, the
  conformal p-value against the calibration's hold-out scores, a constant of the graph), ``is_anomaly`` (bool, against the calibrated threshold, which
  travels in model_info.json).
* ``score_uint8``: ``images`` uint8 (N, H, W, C), scaled in-graph; same outputs.
* ``score_image_bytes``: ``image_bytes`` string (N,) of encoded PNG/JPEG/BMP, decoded and
  resized in-graph; same outputs.
* ``residual_map``: ``images`` -> ``residual_map``, ``reconstruction`` (N, H, W, C) in [0, 1].
* ``encode``: ``images`` -> ``z`` (N, latent_dim).
* ``generate``: ``z`` float32 (N, latent_dim) -> ``images`` (N, H, W, C) in [0, 1]; draw z from
  the generator's prior, ``latent_prior`` in model_info.json (N(0, I) or U(-1, 1)).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan import signatures as sig
from tf_fanogan.models import latent
from tf_fanogan.scoring.scorer import build_scorer
from tf_fanogan.serving.decode import check_format, decode_image
from tf_fanogan.utils.atomic import fsync_tree
from tf_fanogan.utils.progress import Progress, stage

INFO_FILE = "model_info.json"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 4)


class ExportError(RuntimeError):
    """The detector cannot be exported or the target version is unusable."""


def list_versions(model_dir: str) -> list[int]:
    """Integer version folders of a model directory (what TF Serving would see)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(n) for n in os.listdir(model_dir)
                  if re.fullmatch(r"\d{1,18}", n) and os.path.isdir(os.path.join(model_dir, n)))


STALE_AFTER_S = 24 * 3600


def remove_stale_partials(model_dir: str) -> list[str]:
    """Removes ``.tmp-*`` folders that a killed export left behind: those written by a process of
    this host that no longer runs, and any older than a day (another host's, or an old name)."""
    removed = []
    host = socket.gethostname()
    for name in sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []:
        if not name.startswith(".tmp-"):
            continue
        path = os.path.join(model_dir, name)
        m = re.fullmatch(r"\.tmp-\d+-(.+)-(\d+)-[0-9a-f]{8}", name)
        try:
            age = time.time() - os.path.getmtime(path)
        except OSError:
            continue
        dead = m is not None and m.group(1) == host and not _running(int(m.group(2)))
        if dead or age > STALE_AFTER_S:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _float32_networks(detector):
    """The detector's networks, rebuilt under float32 if it computes in mixed precision."""
    if not detector.config.mixed_precision:
        return detector.generator, detector.critic, detector.encoder
    from tf_fanogan.models.networks import build_networks, dtype_policy

    with dtype_policy("float32"):
        nets = build_networks(detector.config.model)
    for new, old in zip(nets, (detector.generator, detector.critic, detector.encoder)):
        new.set_weights(old.get_weights())
    return nets


def serving_functions(detector):
    """The endpoint functions and input signatures, keyed by signature name: the detector's
    :class:`~tf_fanogan.scoring.scorer.Scorer` (float32 networks, its kappa and threshold) plus
    the uint8 and encoded-bytes front ends of its score endpoint."""
    if detector.threshold_ is None:
        raise ExportError("calibrate the detector before export (the score signature returns is_anomaly)")
    m = detector.config.model
    size, channels, policy = m.image_size, m.channels, detector.config.data.image_policy()
    scorer = build_scorer(_float32_networks(detector), detector.config, detector.threshold_,
                          detector.holdout_scores_, detector.normalization_,
                          (detector.calibration_ or {}).get("scoring"), detector.memory_)
    image_shape = [None, size, size, channels]

    def score_uint8(images):
        images = tf.ensure_shape(images, image_shape)
        return scorer.score_images(tf.cast(images, tf.float32) / 255.0)

    def score_image_bytes(image_bytes):
        image_bytes = tf.ensure_shape(image_bytes, [None])
        checks = [tf.debugging.Assert(tf.size(image_bytes) > 0,
                                      [f"{sig.IMAGE_BYTES}: empty batch (0 images); send at least one image"])]
        with tf.control_dependencies(checks):  # the format check's argmax fails on an empty batch
            checks.append(check_format(image_bytes))
        with tf.control_dependencies(checks):
            images = tf.map_fn(
                lambda i: decode_image(image_bytes[i], channels, size, i, **policy,
                                       tile_stride=detector.config.data.tile_stride),
                tf.range(tf.size(image_bytes)), fn_output_signature=tf.TensorSpec((size, size, channels), tf.float32))
        return scorer.score_images(images)

    specs = scorer.input_specs
    return {  # the first one is also published as serving_default
        sig.SCORE: (scorer.score_images, specs["score"]),
        sig.SCORE_UINT8: (score_uint8, [tf.TensorSpec(image_shape, tf.uint8, name=sig.IMAGES)]),
        sig.SCORE_IMAGE_BYTES: (score_image_bytes, [tf.TensorSpec([None], tf.string, name=sig.IMAGE_BYTES)]),
        sig.RESIDUAL_MAP_SIGNATURE: (scorer.residual_map_images, specs["residual_map"]),
        sig.ENCODE: (scorer.encode_images, specs["encode"]),
        sig.GENERATE: (scorer.generate_images, specs["generate"]),
    }


def _warmup_inputs(detector, name, batch):
    import io

    from PIL import Image

    m = detector.config.model
    rng = np.random.default_rng(batch)
    shape = (batch, m.image_size, m.image_size, m.channels)
    if name == sig.GENERATE:
        return {sig.Z_INPUT: latent.sample_numpy(rng, (batch, m.latent_dim), m.latent_prior)}
    if name == sig.SCORE_UINT8:
        return {sig.IMAGES: rng.integers(0, 256, shape, dtype=np.uint8)}
    if name == sig.SCORE_IMAGE_BYTES:
        blobs = []
        for _ in range(batch):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, shape[1:3] if m.channels == 1 else shape[1:],
                                         dtype=np.uint8)).save(buf, format="PNG")
            blobs.append(buf.getvalue())
        return {sig.IMAGE_BYTES: np.array(blobs, dtype=object)}
    return {sig.IMAGES: rng.uniform(0, 1, shape).astype(np.float32)}


def write_warmup(detector, path: str, model_name: str) -> int:
    """Writes TF Serving warm-up records: one Predict per signature and batch size."""
    from tf_fanogan.serving import tensors
    from tf_fanogan.serving.protos import predict_pb2, prediction_log_pb2

    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for name in serving_signature_names():
            for batch in WARMUP_BATCH_SIZES:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = model_name
                request.model_spec.signature_name = name
                for key, value in _warmup_inputs(detector, name, batch).items():
                    request.inputs[key].CopyFrom(tensors.to_proto(value))
                log = prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())
                count += 1
    return count


def serving_signature_names() -> list[str]:
    return [sig.SCORE, sig.SCORE_UINT8, sig.SCORE_IMAGE_BYTES, sig.RESIDUAL_MAP_SIGNATURE,
            sig.ENCODE, sig.GENERATE]


def model_info(detector, model_name: str, version: int) -> dict:
    from tf_fanogan import __version__

    m = detector.config.model
    cal = detector.calibration_ or {}
    return {
        "model_name": model_name,
        "version": version,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "image_shape": [m.image_size, m.image_size, m.channels],
        "latent_dim": m.latent_dim,
        "latent_prior": m.latent_prior,
        "data": detector.config.data.image_policy(),
        "tiling": (None if detector.config.data.tile_stride is None else
                   {k: getattr(detector.config.data, k) for k in ("tile_stride", "tile_score", "tile_top_k")}),
        "scoring": {**detector.config.scoring.__dict__, "normalization": detector.normalization_,
                    "memory": (None if detector.config.scoring.method != "critic_nn" else
                               {"images": int(detector.memory_.shape[0]), "features": int(detector.memory_.shape[1]),
                                "definition": "anomaly_score = RMS distance of the critic's features f(x) to the "
                                              "nearest normal training image's (the memory: in variables/ of this SavedModel)"})},
        "input_scaling": {sig.SCORE: "float32 in [0, 1] (model works in [-1, 1] = 2x - 1)",
                          sig.SCORE_UINT8: "uint8 0..255, divided by 255 in-graph",
                          sig.SCORE_IMAGE_BYTES: "encoded PNG/JPEG/BMP, decoded to [0, 1] and area-resized in-graph"},
        "kappa": detector.config.encoder.kappa,
        "encoder_mode": detector.config.encoder.mode,
        "threshold": detector.threshold_,
        "p_value": (None if detector.holdout_scores_ is None else
                    {"definition": "(1 + #{hold-out anomaly scores >= s}) / (n + 1), computed in the graph",
                     "n_holdout": int(len(detector.holdout_scores_))}),
        "calibration_fpr": cal.get("fpr_target"),
        "calibration": cal,
        "training_data_fingerprint": detector.data_fingerprint_,
        "versions": {"tf_fanogan": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "signatures": serving_signature_names(),
        "serving_default": sig.SCORE,
        "note": "TF Serving must run TensorFlow >= the exporting version.",
    }


def export_detector(detector, base_path: str, model_name: str = "fanogan", version: int | None = None,
                    warmup: bool = True, progress: bool = False) -> str:
    """Exports ``detector`` to ``<base_path>/<model_name>/<version>/`` atomically.

    Args:
        detector: A trained and calibrated :class:`~tf_fanogan.detector.FAnoGAN`.
        base_path: TF Serving's ``--model_base_path`` parent (e.g. ``saved_models``).
        model_name: The model's name in TF Serving.
        version: Integer version; default one above the highest existing version.
            An existing version is never overwritten.
        warmup: Write ``assets.extra/tf_serving_warmup_requests``.
        progress: Print each step with its counts and rates on stderr.

    Returns:
        The path of the published version directory.
    """
    t0 = time.perf_counter()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name):
        raise ExportError(f"model name {model_name!r} must be letters, digits, '_', '-' or '.'")
    if not detector.trained_.get("encoder"):
        raise ExportError("the detector has no trained encoder: train it before export")
    model_dir = os.path.join(base_path, model_name)
    os.makedirs(model_dir, exist_ok=True)
    existing = list_versions(model_dir)
    version = (existing[-1] + 1 if existing else 1) if version is None else int(version)
    if version < 0:
        raise ExportError(f"version must be a non-negative integer, got {version}")
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final} already exists; published versions are never overwritten")
    removed = remove_stale_partials(model_dir)
    if removed and progress:
        print(f"removed {len(removed)} unfinished export(s) left by killed runs: {', '.join(removed)}",
              file=sys.stderr, flush=True)
    tmp = os.path.join(model_dir, f".tmp-{version}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        functions = serving_functions(detector)
        bar = Progress("tracing signatures", len(functions), unit="signatures", enabled=progress)
        archive = keras.export.ExportArchive()
        for name, (fn, spec) in functions.items():
            # Traced here (add_endpoint alone defers it to write_out), so the bar times the tracing.
            archive.add_endpoint(name, fn, input_signature=spec).get_concrete_function(*spec)
            bar.update()
        bar.close()
        with stage("writing the SavedModel", progress):
            archive.write_out(tmp, verbose=False)
        extra = os.path.join(tmp, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        if warmup:
            bar = Progress("warm-up requests", unit="records", enabled=progress)
            bar.update(write_warmup(detector, os.path.join(extra, WARMUP_FILE), model_name))
            bar.close()
        info = model_info(detector, model_name, version)
        info["saved_model_sha256"] = hashlib.sha256(
            open(os.path.join(tmp, "saved_model.pb"), "rb").read()).hexdigest()
        with open(os.path.join(extra, INFO_FILE), "w") as f:
            json.dump(info, f, indent=2)
        fsync_tree(tmp)
        if os.path.exists(final):
            raise ExportError(f"{final} appeared during export; not overwriting it")
        os.rename(tmp, final)  # TF Serving polls integer names only: it never sees ".tmp-*"
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(final) for f in fs)
        seconds = time.perf_counter() - t0
        print(f"published {final}: {size / 2**20:.1f} MiB in {seconds:.1f} s "
              f"({size / 2**20 / max(seconds, 1e-9):.1f} MiB/s)", file=sys.stderr, flush=True)
    return final

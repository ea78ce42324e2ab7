"""A Beam ``ModelHandler`` for an exported f-AnoGAN SavedModel version.

Beam's own ``TFModelHandlerNumpy`` loads models with ``tf.keras.models.load_model``, which
refuses Keras-3 SavedModels (apache/beam#30616); this handler loads the version with
``tf.saved_model.load`` and calls its ``score`` signature, the endpoint TF Serving serves.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any, Iterable, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler

from tf_fanogan import signatures as sig

INFO_PATH = ("assets.extra", "model_info.json")
SAVED_MODEL = "saved_model.pb"


class ExportedModelError(ValueError):
    """``--model`` is not a usable exported version; the message names the path."""


@dataclasses.dataclass(frozen=True)
class ExportedModel:
    """What the pipeline needs to know about an exported version before it runs."""

    path: str
    image_size: int
    channels: int
    threshold: float
    has_p_value: bool
    color: str = "auto"
    color_tolerance: float = 0.0
    small_images: str = "refuse"
    pad_fill: str = "edge"

    @property
    def image_policy(self) -> dict:
        """The export's ``data`` policies, as :func:`tf_fanogan.data.images.to_unit_range` takes them."""
        return {"color": self.color, "color_tolerance": self.color_tolerance, "small_images": self.small_images,
                "pad_fill": self.pad_fill}

    @property
    def columns(self) -> list[str]:
        """The row columns of ``fanogan score`` for this model (``path`` first)."""
        return ["path", *sig.SCORE_OUTPUTS, *([sig.P_VALUE] if self.has_p_value else []), sig.IS_ANOMALY]


def read_export(path: str) -> ExportedModel:
    """Checks that ``path`` is one exported version (``<base>/<model>/<version>/``) and reads its
    ``model_info.json``. Works on any filesystem Beam reads (local, ``gs://``, ``s3://``)."""
    path = path.rstrip("/") or "/"
    if not FileSystems.exists(path):
        raise ExportedModelError(f"{path}: no such path (expected an exported model version, e.g. saved_models/fanogan/1)")
    if not FileSystems.exists(FileSystems.join(path, SAVED_MODEL)):
        if FileSystems.exists(FileSystems.join(path, "manifest.json")) or FileSystems.exists(FileSystems.join(path, "config.json")):
            raise ExportedModelError(f"{path}: a detector directory, not an exported version; export it first "
                              f"(fanogan export {path} --base-path saved_models) and pass saved_models/<name>/<version>")
        versions = _versions(path)
        if versions:
            raise ExportedModelError(f"{path}: a model directory with versions {', '.join(map(str, versions))}; "
                              f"pass one version folder, e.g. {FileSystems.join(path, str(versions[-1]))}")
        raise ExportedModelError(f"{path}: no {SAVED_MODEL} (expected an exported model version, e.g. saved_models/fanogan/1)")
    info_path = FileSystems.join(path, *INFO_PATH)
    if not FileSystems.exists(info_path):
        raise ExportedModelError(f"{path}: no {'/'.join(INFO_PATH)}; not a version written by `fanogan export`")
    with FileSystems.open(info_path) as f:
        try:
            info = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ExportedModelError(f"{info_path}: not valid JSON ({e})") from None
    if info.get("threshold") is None:
        raise ExportedModelError(f"{path}: the export has no calibrated threshold (is_anomaly); calibrate the detector "
                          f"and export it again")
    if info.get("tiling"):
        raise ExportedModelError(f"{path}: exported from a tiled detector (data.tile_stride "
                                 f"{info['tiling'].get('tile_stride')}); beam-score scores whole images with one "
                                 "forward pass each, so score it with fanogan score or client.score_tiled")
    try:
        size, _, channels = (int(v) for v in info["image_shape"])
    except (KeyError, TypeError, ValueError):
        raise ExportedModelError(f"{info_path}: image_shape missing or not [size, size, channels]") from None
    # Versions exported before the data policies existed accepted only exactly grey RGB
    # (tolerance 0) and refused small images.
    policy = {"color": "auto", "color_tolerance": 0.0, "small_images": "refuse", "pad_fill": "edge",
              **(info.get("data") or {})}
    return ExportedModel(path, size, channels, float(info["threshold"]), info.get("p_value") is not None,
                         policy["color"], float(policy["color_tolerance"]), policy["small_images"], policy["pad_fill"])


def _versions(path: str) -> list[int]:
    try:
        result = FileSystems.match([FileSystems.join(path, "*", SAVED_MODEL)])[0]
    except Exception:  # noqa: BLE001 -- a listing failure only loses the hint
        return []
    names = {posixpath.basename(posixpath.dirname(m.path)) for m in result.metadata_list}
    return sorted(int(n) for n in names if n.isdigit())


class SavedModelScoreHandler(ModelHandler[np.ndarray, dict, Any]):
    """Scores batches of float32 (S, S, C) images in [0, 1] with the version's ``score`` signature.

    One prediction per image: a dict of the signature's scalar outputs (``anomaly_score``,
    ``residual_score``, ``feature_score``, ``z_distance``, ``p_value`` where the model has it,
    ``is_anomaly``). With ``alpha`` set, ``is_anomaly`` is ``p_value <= alpha`` instead of the
    calibrated threshold, as ``fanogan score --alpha``.
    """

    def __init__(self, model: ExportedModel, min_batch_size: int | None = None, max_batch_size: int | None = None,
                 alpha: float | None = None):
        if alpha is not None and not model.has_p_value:
            raise ExportedModelError(f"{model.path}: --alpha needs p-values, and this export has no hold-out scores")
        if alpha is not None and not 0 < alpha < 1:
            raise ExportedModelError(f"alpha must lie in (0, 1), got {alpha}")
        for name, v in (("min_batch_size", min_batch_size), ("max_batch_size", max_batch_size)):
            if v is not None and v < 1:
                raise ExportedModelError(f"{name} must be >= 1, got {v}")
        if min_batch_size and max_batch_size and min_batch_size > max_batch_size:
            raise ExportedModelError(f"min_batch_size {min_batch_size} > max_batch_size {max_batch_size}")
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         env_vars={"TF_CPP_MIN_LOG_LEVEL": "3"})
        self.model = model
        self.alpha = alpha

    def load_model(self):
        import tensorflow as tf

        return tf.saved_model.load(self.model.path).signatures[sig.SCORE]

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> Iterable[dict]:
        import tensorflow as tf

        out = model(**{sig.IMAGES: tf.constant(np.stack(batch).astype(np.float32))})
        out = {k: v.numpy() for k, v in out.items()}
        if self.alpha is not None:
            out[sig.IS_ANOMALY] = out[sig.P_VALUE] <= self.alpha
        keys = self.model.columns[1:]
        return [{k: out[k][i] for k in keys} for i in range(len(batch))]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return int(sum(x.nbytes for x in batch))

    def get_metrics_namespace(self) -> str:
        return "tf_fanogan"

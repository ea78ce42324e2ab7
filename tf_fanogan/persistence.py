"""A saved detector directory: config, weights, fitted state and a SHA-256 manifest.

``config.json`` (the :class:`~tf_fanogan.config.FAnoGANConfig`), ``generator``/``critic``/
``encoder.weights.h5``, ``state.json`` (threshold, calibration, training facts), for
``scoring.method: critic_nn`` ``memory.npy`` (the critic-feature memory, a plain array), and
``manifest.json`` (format, versions, every file's SHA-256). Written under a hidden temporary
name and renamed into place; loading verifies every hash and unpickles nothing.
"""

from __future__ import annotations

import hashlib
import json
import os

from tf_fanogan.config import FAnoGANConfig, read_mapping
from tf_fanogan.errors import DetectorError
from tf_fanogan.training.workdir import WEIGHT_FILES as NETWORK_FILES
from tf_fanogan.training.workdir import jsonable
from tf_fanogan.utils.atomic import recover_directory, write_directory_atomically

FORMAT = "tf_fanogan.detector"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
MEMORY_FILE = "memory.npy"
OPTIONAL_FILES = (MEMORY_FILE,)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(path: str, config: FAnoGANConfig, networks: dict, state: dict, memory=None) -> str:
    """Writes a detector directory atomically (``memory``: the critic-feature memory, or None)."""
    import keras
    import tensorflow as tf

    from tf_fanogan import __version__

    def write(tmp):
        config.save(os.path.join(tmp, CONFIG_FILE))
        for name, fname in NETWORK_FILES.items():
            networks[name].save_weights(os.path.join(tmp, fname))
        with open(os.path.join(tmp, STATE_FILE), "w") as f:
            json.dump(jsonable(state), f, indent=2)
        names = [CONFIG_FILE, STATE_FILE, *NETWORK_FILES.values()]
        if memory is not None:
            import numpy as np

            np.save(os.path.join(tmp, MEMORY_FILE), np.asarray(memory, np.float32), allow_pickle=False)
            names.append(MEMORY_FILE)
        files = {n: sha256_file(os.path.join(tmp, n)) for n in names}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "tf_fanogan": __version__,
                    "tensorflow": tf.__version__, "keras": keras.__version__, "sha256": files}
        with open(os.path.join(tmp, MANIFEST_FILE), "w") as f:
            json.dump(manifest, f, indent=2)

    write_directory_atomically(path, write)
    return path


def verify(path: str) -> None:
    """Refuses a directory that is not a complete, unmodified saved detector."""
    recover_directory(path)
    if not os.path.isdir(path):
        raise DetectorError(f"{path}: not a detector directory")
    manifest_path = os.path.join(path, MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        raise DetectorError(f"{path}: missing {MANIFEST_FILE}; not a saved detector")
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
        expected = manifest["sha256"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DetectorError(f"{manifest_path}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise DetectorError(f"{manifest_path}: unsupported format {manifest.get('format')!r} "
                            f"version {manifest.get('format_version')!r}")
    optional = [n for n in OPTIONAL_FILES if n in expected]
    for name in [CONFIG_FILE, STATE_FILE, *NETWORK_FILES.values(), *optional]:
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise DetectorError(f"{file}: missing from the detector directory")
        if sha256_file(file) != expected.get(name):
            raise DetectorError(f"{file}: SHA-256 does not match the manifest (file changed or corrupt)")


def load_config(path: str) -> FAnoGANConfig:
    """A saved detector's config. Detectors saved before ``model.latent_prior`` existed were
    trained on z ~ N(0, I) with a tanh encoder head: their config says so once loaded, so they
    score exactly as before."""
    raw = read_mapping(os.path.join(path, CONFIG_FILE))
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict) and "latent_prior" not in model:
        raw["model"] = {**model, "latent_prior": "normal", "encoder_head": "tanh"}
    return FAnoGANConfig.from_dict(raw, source=os.path.join(path, CONFIG_FILE))


def load_weights(path: str, networks: dict) -> None:
    for name, fname in NETWORK_FILES.items():
        networks[name].load_weights(os.path.join(path, fname))


def load_memory(path: str):
    """The critic-feature memory of a saved detector (verified by the manifest), or None."""
    import numpy as np

    file = os.path.join(path, MEMORY_FILE)
    with open(os.path.join(path, MANIFEST_FILE)) as f:
        listed = MEMORY_FILE in json.load(f)["sha256"]
    if not listed:
        if os.path.exists(file):
            raise DetectorError(f"{file}: not in the detector's manifest (added after it was saved); remove it")
        return None
    try:
        return np.load(file, allow_pickle=False)
    except ValueError as e:
        raise DetectorError(f"{file}: not a plain float array ({e})") from None


def load_state(path: str) -> dict:
    with open(os.path.join(path, STATE_FILE)) as f:
        return json.load(f)


def state_of(det) -> dict:
    """A detector's fitted state, as ``state.json`` stores it."""
    held = det.holdout_scores_
    return {"threshold": det.threshold_, "calibration": det.calibration_, "trained": det.trained_,
            "holdout_scores": None if held is None else [float(v) for v in held],
            "normalization": det.normalization_, "data_fingerprint": det.data_fingerprint_, "history": det.history_, "updates": det.updates_}


def apply_state(det, state: dict) -> None:
    """Sets a loaded detector's fitted state (keys absent in older detectors stay empty)."""
    import numpy as np

    det.threshold_, det.calibration_, det.trained_ = state["threshold"], state["calibration"], state["trained"]
    det.data_fingerprint_ = state.get("data_fingerprint")
    held = state.get("holdout_scores")  # absent in detectors calibrated before p-values existed
    det.holdout_scores_ = None if held is None else np.asarray(held, np.float32)
    det.normalization_ = state.get("normalization")  # scoring.normalize's hold-out statistics
    det.history_, det.updates_ = state.get("history", {}), state.get("updates", {})


def summary(det) -> dict:
    """Facts for ``fanogan info``: config, parameter counts, training and calibration."""
    import numpy as np

    counts = {n: int(sum(np.prod(w.shape) for w in net.trainable_weights)) for n, net in det.networks.items()}
    counts["total"] = sum(counts.values())
    return {"config": det.config.to_dict(), "trainable_parameters": counts, "trained": det.trained_,
            "updates": det.updates_, "threshold": det.threshold_, "calibration": det.calibration_,
            "data_fingerprint": det.data_fingerprint_,
            "memory": None if det.memory_ is None else {"images": int(det.memory_.shape[0]),
                                                         "features": int(det.memory_.shape[1])}}

"""Helpers of the serving tests (tests/serving/): images, raw gRPC calls, encoded files."""

import io
import os
import shutil
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from tf_fanogan.serving import tensors
from tf_fanogan.serving.protos import predict_pb2
from . import blobs

TOL = dict(rtol=1e-5, atol=1e-6)


def publish(version_dir, base_path, name, version=None, warmup=True):
    """Publishes a copy of an exported version (the suite exports the trained detector once:
    ``trained_export``) as ``<base_path>/<name>/<version>`` the way ``export_detector`` does, written
    beside it and renamed into place; ``version`` defaults to one above the highest. Returns its path."""
    from tf_fanogan.serving.export import WARMUP_FILE, list_versions

    model_dir = os.path.join(base_path, name)
    os.makedirs(model_dir, exist_ok=True)
    if version is None:
        existing = list_versions(model_dir)
        version = existing[-1] + 1 if existing else 1
    tmp, final = os.path.join(model_dir, f".tmp-copy-{version}"), os.path.join(model_dir, str(version))
    shutil.copytree(version_dir, tmp)
    if not warmup:
        os.remove(os.path.join(tmp, "assets.extra", WARMUP_FILE))
    os.rename(tmp, final)
    return final


def images01(trained_detector, n, seed):
    return trained_detector.prepare(blobs(n, seed=seed))


def raw_predict(server, spec=None, inputs=None, signature="", output_filter=()):
    from tf_fanogan.serving.protos import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.target))
    request = predict_pb2.PredictRequest()
    if spec is not None:
        request.model_spec.CopyFrom(spec)
        request.model_spec.signature_name = signature
    for k, v in (inputs or {}).items():
        request.inputs[k].CopyFrom(tensors.to_proto(v))
    request.output_filter.extend(output_filter)
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(request, timeout=30)
    return e.value.code(), e.value.details()


def wait_for(predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def encoded(fmt, size=20):
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), 128, np.uint8)).save(buf, fmt)
    return buf.getvalue()


def rgb_png(fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(np.stack([np.full((20, 20), v, np.uint8) for v in (200, 100, 50)], -1)).save(buf, fmt)
    return buf.getvalue()


def parity_files(folder):
    """One file per format the in-process reader takes; the same picture in each."""
    g = blobs(1, size=20, seed=41)[0]
    g16 = g.astype(np.uint16) * 257 + np.random.default_rng(4).integers(0, 200, g.shape).astype(np.uint16)
    near = np.stack([g, np.clip(g.astype(int) + 4, 0, 255), g], -1).astype(np.uint8)
    files = {"PNG 8-bit": ("a.png", g), "PNG 16-bit": ("b.png", g16), "JPEG": ("c.jpg", g),
             "JPEG, grey stored as RGB": ("d.jpg", near), "BMP": ("e.bmp", g), "TIFF 8-bit": ("f.tif", g),
             "TIFF 16-bit": ("g.tif", g16)}
    for name, arr in files.values():
        Image.fromarray(arr).save(folder / name)
    return {fmt: str(folder / name) for fmt, (name, _) in files.items()}

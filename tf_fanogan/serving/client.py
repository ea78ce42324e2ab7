"""Thin clients for an exported f-AnoGAN behind TF Serving (or the local server).

Importing this module does not load the TensorFlow runtime: the TF Serving protos are
loaded on their own (:mod:`tf_fanogan.serving.protos`) and tensors are encoded and decoded
with numpy. Works unchanged against the real ``tensorflow_model_server``.

Example:
    >>> client = FAnoGANClient("127.0.0.1:8500", "fanogan")
    >>> client.wait_until_available()
    >>> client.score(images)["anomaly_score"]        # images: (N, H, W[, C]) uint8 or float32 in [0, 1]
    >>> client.residual_maps(images[:4])["residual_map"]
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.request

import grpc
import numpy as np

from tf_fanogan import signatures as sig
from tf_fanogan.serving import tensors
from tf_fanogan.serving.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

STATE_NAMES = {0: "UNKNOWN", 10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"}
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20


class ServingClientError(Exception):
    """A failed call; ``code`` is the gRPC status name (e.g. ``NOT_FOUND``)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidArgument(ServingClientError):
    pass


class NotFound(ServingClientError):
    pass


class FailedPrecondition(ServingClientError):
    pass


class Unavailable(ServingClientError):
    pass


class DeadlineExceeded(ServingClientError):
    pass


_ERRORS = {"INVALID_ARGUMENT": InvalidArgument, "NOT_FOUND": NotFound, "FAILED_PRECONDITION": FailedPrecondition,
           "UNAVAILABLE": Unavailable, "DEADLINE_EXCEEDED": DeadlineExceeded}


def encode_png(image, index: int = 0) -> bytes:
    """A uint8 (H, W[, 1|3|4]) or uint16 (H, W[, 1]) image -> lossless PNG bytes (for
    ``score_image_bytes``); anything else is refused, naming ``images[index]``."""
    import io

    from PIL import Image

    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    ok = (a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4)))) or (
        a.dtype == np.uint16 and a.ndim == 2)
    if not ok:
        raise InvalidArgument("INVALID_ARGUMENT", f"images[{index}]: a {a.dtype} image of shape {a.shape} is not at the "
                              "model size and has no lossless PNG form; send uint8 (H, W[, C]) or uint16 (H, W) images, "
                              "or float32 ones at the model size")
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def error_for(code: str, message: str) -> ServingClientError:
    return _ERRORS.get(code, ServingClientError)(code, message)


class _SignatureInfo:
    def __init__(self, inputs: dict, outputs: dict):
        self.inputs = inputs    # alias -> (dtype enum, shape with -1 for unknown)
        self.outputs = outputs


def _signature_infos(sdm) -> dict:
    def tensors_of(m):
        return {k: (v.dtype, tuple(-1 if d.size < 0 else d.size for d in v.tensor_shape.dim)) for k, v in m.items()}
    return {name: _SignatureInfo(tensors_of(s.inputs), tensors_of(s.outputs))
            for name, s in sdm.items() if not name.startswith("__")}


class _Base:
    """Shared logic of the gRPC and REST clients: validation, batching, convenience methods."""

    server_max_batch: int | None = None  # learnt from a server that refused a larger request
    max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES

    def signatures(self) -> dict:
        raise NotImplementedError

    def predict(self, signature: str, inputs: dict, output_filter=None, timeout=None) -> dict:
        raise NotImplementedError

    def _prepare(self, signature: str, images) -> tuple[str, np.ndarray]:
        images = np.asarray(images)
        info = self.signatures().get(signature)
        if info is None:
            raise FailedPrecondition("FAILED_PRECONDITION", f'Serving signature key "{signature}" not found.')
        alias = next(iter(info.inputs))
        dtype, shape = info.inputs[alias]
        if images.ndim == 0 or len(images) == 0:
            raise InvalidArgument("INVALID_ARGUMENT", f"{alias}: empty batch (shape {images.shape}); send at least "
                                  "one image")
        if images.ndim == len(shape) - 1 and shape[-1] == 1:
            images = images[..., None]
        if images.ndim != len(shape) or any(s not in (-1, d) for s, d in zip(shape, images.shape)):
            raise InvalidArgument("INVALID_ARGUMENT",
                                  f"{alias}: shape {images.shape} does not match the signature's {shape}")
        want = np.dtype(tensors.DTYPES[dtype])
        if images.dtype != want:
            raise InvalidArgument("INVALID_ARGUMENT", f"{alias}: dtype {images.dtype} but signature {signature!r} "
                                  f"expects {want}")
        return alias, images

    def _batched(self, signature: str, images, output_filter=None, batch_size=None, timeout=None) -> dict:
        alias, images = self._prepare(signature, images)
        info = self.signatures()[signature]
        outputs = list(output_filter or info.outputs)
        per_image = sum(4 * int(np.prod([d for d in info.outputs[o][1][1:] if d > 0] or [1])) for o in outputs)
        sent = len(images[0]) if isinstance(images[0], bytes) else images[0].nbytes
        fit = max(1, int(self.max_message_bytes * 0.8) // max(per_image, sent, 1))
        bs = min(batch_size or fit, fit, self.server_max_batch or fit)
        parts, i = [], 0
        while i < len(images):
            try:
                parts.append(self.predict(signature, {alias: images[i:i + bs]}, output_filter, timeout))
            except InvalidArgument as e:
                # A server with batching on refuses requests above its max_batch_size: learn the
                # limit it states (TF Serving's own wording) and send pieces of that size instead.
                m = re.search(r"Task size \d+ is larger than maximum input batch size (\d+)", e.message)
                if m is None or int(m.group(1)) >= bs:
                    raise
                self.server_max_batch = bs = int(m.group(1))
                continue
            i += bs
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _score_signature(self, images) -> str:
        return sig.SCORE_UINT8 if np.asarray(images).dtype == np.uint8 else sig.SCORE

    def _at_model_size(self, images) -> bool:
        if isinstance(images, np.ndarray) and images.dtype != object:
            _, shape = next(iter(self.signatures()[sig.SCORE].inputs.values()))
            return images.ndim < 3 or tuple(images.shape[1:3]) == tuple(shape[1:3])
        return False

    def score(self, images, output_filter=None, batch_size=None, timeout=None) -> dict:
        """Scores images. An (N, H, W[, C]) array at the model size goes as a tensor: uint8 to
        ``score_uint8``, float32 in [0, 1] to ``score``. 8/16-bit images of any other size (an
        array, or a list of differently sized ones) go as lossless PNG to ``score_image_bytes``,
        where the server applies the detector's recorded ``data.small_images`` and ``data.color``
        policies exactly as ``FAnoGAN.score`` does; float images must be at the model size."""
        if self._at_model_size(images):
            return self._batched(self._score_signature(images), images, output_filter, batch_size, timeout)
        blobs = [encode_png(image, i) for i, image in enumerate(images)]
        return self._batched(sig.SCORE_IMAGE_BYTES, np.array(blobs, dtype=object), output_filter, batch_size, timeout)

    def score_tiled(self, image, stride: int, tile_score: str = "max", top_k: int = 5, residual_map: bool = False,
                    batch_size: int = 64, timeout=None, **policy) -> dict:
        """Scores one image at native resolution as a tiled detector (``data.tile_stride``) does:
        cut into model-size tiles at ``stride``, sent to ``score`` ``batch_size`` tiles at a time,
        aggregated by the in-process code (:mod:`tf_fanogan.scoring.tiled`). Gives the image's
        outputs, ``tile_positions``, ``tile_scores`` and with ``residual_map`` its stitched (H, W)
        ``residual_map`` and (H, W, C) ``reconstruction``. ``policy``: the detector's ``data`` colour / small-image settings (DataConfig's
        defaults). ``p_value`` and ``is_anomaly`` come with ``max`` (the top tile's, exactly the
        image's); ``top_k_mean`` needs the hold-out scores, which a server does not give out."""
        from tf_fanogan.data.images import to_unit_native
        from tf_fanogan.scoring import tiled

        _, shape = next(iter(self.signatures()[sig.SCORE].inputs.values()))
        images = to_unit_native([np.asarray(image)], shape[1], shape[3], ["image"], **policy)
        out = tiled.score_tiled(lambda t: self._batched(sig.SCORE, t, None, batch_size, timeout), images, shape[1],
                                stride, tile_score, top_k, batch_size, with_tiles=True)
        if residual_map:
            out.update(tiled.stitched_maps(lambda t: self.residual_maps(t, batch_size, timeout), images, shape[1],
                                           stride, batch_size))
        return {k: v[0] for k, v in out.items()}

    def residual_maps(self, images, batch_size=None, timeout=None) -> dict:
        """``residual_map`` and ``reconstruction`` for float32 images in [0, 1]; batches split to fit."""
        return self._batched(sig.RESIDUAL_MAP_SIGNATURE, images, None, batch_size, timeout)

    def encode(self, images, batch_size=None, timeout=None) -> np.ndarray:
        return self._batched(sig.ENCODE, images, None, batch_size, timeout)[sig.Z]

    def score_files(self, paths, timeout=None) -> dict:
        """Sends encoded image files to ``score_image_bytes`` (decoded and resized server-side)."""
        return self.score_image_bytes([open(p, "rb").read() for p in paths], timeout)

    def score_image_bytes(self, blobs, timeout=None) -> dict:
        """Scores encoded images (PNG, JPEG, BMP bytes) with ``score_image_bytes``, in one request."""
        if len(blobs) == 0:
            raise InvalidArgument("INVALID_ARGUMENT", f"{sig.IMAGE_BYTES}: empty batch; send at least one image")
        return self.predict(sig.SCORE_IMAGE_BYTES, {sig.IMAGE_BYTES: np.array(list(blobs), dtype=object)}, None,
                            timeout)

    def wait_until_available(self, timeout: float = 60.0, interval: float = 0.2) -> list:
        """Polls ``status()`` until a version is AVAILABLE; returns the status rows."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                remaining = max(0.05, deadline - time.monotonic())
                rows = self.status(timeout=min(remaining, self.timeout or remaining))
                if any(r["state"] == "AVAILABLE" for r in rows):
                    return rows
                last = rows
            except (NotFound, Unavailable, ServingClientError) as e:
                last = e
            time.sleep(interval)
        raise Unavailable("UNAVAILABLE", f"model not available after {timeout:.0f} s (last: {last})")


class FAnoGANClient(_Base):
    """gRPC client for TF Serving's PredictionService and ModelService.

    Args:
        target: ``host:port`` of the gRPC endpoint (TF Serving: 8500).
        model_name: The served model's name.
        version, version_label: Pin a version or a label (``stable``/``canary``); default latest.
        timeout: Default per-call deadline in seconds.
        max_message_bytes: Channel send/receive limit; replies are split into batches that fit.
    """

    def __init__(self, target: str, model_name: str, version: int | None = None, version_label: str | None = None,
                 timeout: float = 30.0, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        if version is not None and version_label is not None:
            raise ValueError("give version or version_label, not both")
        self.target, self.model_name = target, model_name
        self.version, self.version_label = version, version_label
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self._model = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self._signatures = None

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _spec(self, spec, signature=""):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label is not None:
            spec.version_label = self.version_label
        if signature:
            spec.signature_name = signature

    def _call(self, method, request, timeout):
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as e:
            raise error_for(e.code().name, e.details() or "") from None

    def metadata(self) -> dict:
        """GetModelMetadata: {signature: {"inputs": {alias: (dtype, shape)}, "outputs": {...}}}, ``__`` skipped."""
        return {k: {"inputs": {a: (tensors.DT_NAMES.get(d, d), s) for a, (d, s) in v.inputs.items()},
                    "outputs": {a: (tensors.DT_NAMES.get(d, d), s) for a, (d, s) in v.outputs.items()}}
                for k, v in self.signatures(refresh=True).items()}

    def signatures(self, refresh: bool = False) -> dict:
        if self._signatures is None or refresh:
            request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
            self._spec(request.model_spec)
            response = self._call(self._predict.GetModelMetadata, request, None)
            sdm = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(sdm)
            self._signatures = _signature_infos(sdm.signature_def)
        return self._signatures

    def status(self, timeout=None) -> list[dict]:
        """GetModelStatus rows: version, state name, error message."""
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._model.GetModelStatus, request, timeout)
        return [{"version": s.version, "state": STATE_NAMES.get(s.state, str(s.state)),
                 "error": s.status.error_message} for s in response.model_version_status]

    def predict(self, signature: str, inputs: dict, output_filter=None, timeout=None, return_version=False):
        """One Predict call; numpy in, numpy out."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tensors.to_proto(value))
        if output_filter:
            request.output_filter.extend(output_filter)
        response = self._call(self._predict.Predict, request, timeout)
        out = {k: tensors.to_numpy(v) for k, v in response.outputs.items()}
        return (out, response.model_spec.version.value) if return_version else out


class RestClient(_Base):
    """The same methods over TF Serving's REST API (port 8501), with only the standard library."""

    def __init__(self, base_url: str, model_name: str, version: int | None = None, version_label: str | None = None,
                 timeout: float = 30.0, max_message_bytes: int = 64 << 20):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        suffix = f"/versions/{version}" if version is not None else (f"/labels/{version_label}" if version_label else "")
        self.model_url = f"{self.base_url}/v1/models/{model_name}{suffix}"
        self._signatures = None

    def _request(self, url, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", "")
            except ValueError:
                message = str(e)
            code = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 503: "UNAVAILABLE"}.get(e.code, "INTERNAL")
            raise error_for(code, message) from None
        except urllib.error.URLError as e:
            raise Unavailable("UNAVAILABLE", str(e.reason)) from None

    def signatures(self, refresh: bool = False) -> dict:
        if self._signatures is None or refresh:
            from google.protobuf import json_format

            body = self._request(self.model_url + "/metadata")
            sdm = get_model_metadata_pb2.SignatureDefMap()
            json_format.ParseDict(body["metadata"]["signature_def"], sdm, ignore_unknown_fields=True)
            self._signatures = _signature_infos(sdm.signature_def)
        return self._signatures

    def metadata(self) -> dict:
        return {k: {"inputs": {a: (tensors.DT_NAMES.get(d, d), s) for a, (d, s) in v.inputs.items()},
                    "outputs": {a: (tensors.DT_NAMES.get(d, d), s) for a, (d, s) in v.outputs.items()}}
                for k, v in self.signatures(refresh=True).items()}

    def status(self, timeout=None) -> list[dict]:
        body = self._request(self.model_url, timeout=timeout)
        return [{"version": int(s["version"]), "state": s["state"],
                 "error": s.get("status", {}).get("error_message", "")} for s in body["model_version_status"]]

    def predict(self, signature: str, inputs: dict, output_filter=None, timeout=None) -> dict:
        info = self.signatures()[signature] if signature in self.signatures() else None
        cols = {}
        for k, v in inputs.items():
            v = np.asarray(v)
            cols[k] = ([{"b64": base64.b64encode(b).decode()} for b in v.tolist()] if v.dtype == object else v.tolist())
        body = self._request(f"{self.model_url}:predict", {"signature_name": signature, "inputs": cols}, timeout)
        outputs = body["outputs"]
        if not isinstance(outputs, dict):
            outputs = {next(iter(info.outputs)) if info else "output": outputs}
        result = {}
        for k, v in outputs.items():
            dtype = tensors.DTYPES.get(info.outputs[k][0], np.float32) if info and k in info.outputs else np.float32
            result[k] = np.asarray(v, dtype=dtype)
        if output_filter:
            result = {k: result[k] for k in output_filter}
        return result

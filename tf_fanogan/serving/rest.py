"""TF Serving's REST API (``/v1/models/...``: status, metadata, ``:predict`` in row and
columnar form, ``{"b64": ...}`` bytes) over the handlers."""

from __future__ import annotations

import base64
import json
import logging
import re
from http.server import BaseHTTPRequestHandler

import numpy as np
from google.protobuf import json_format

from tf_fanogan.serving import tensors
from tf_fanogan.serving.handlers import metadata, model_status
from tf_fanogan.serving.manager import MODEL_NAME_RE, ModelManager
from tf_fanogan.serving.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)
from tf_fanogan.serving.servable import SERVING_DEFAULT, ServingError

log = logging.getLogger("tf_fanogan.serving")


HTTP_CODES = {"OK": 200, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404,
              "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "RESOURCE_EXHAUSTED": 429,
              "INTERNAL": 500, "DEADLINE_EXCEEDED": 504}

_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                        r"(?P<suffix>/metadata|:predict)?$")


def _json_to_array(value, dtype: int):
    np_dtype = tensors.DTYPES.get(dtype)
    if np_dtype is object:
        def walk(v):
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict) and "b64" in v:
                return base64.b64decode(v["b64"])
            return v.encode() if isinstance(v, str) else v
        return np.array(walk(value), dtype=object)
    if np_dtype is not None and np.issubdtype(np_dtype, np.integer):
        raw = np.asarray(value)
        if raw.dtype.kind not in "iub":
            raise ValueError(f"expected integers for {np.dtype(np_dtype)}, got {raw.dtype} values")
        info = np.iinfo(np_dtype)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise ValueError(f"values {raw.min()}..{raw.max()} outside {np.dtype(np_dtype)}'s range "
                             f"{info.min}..{info.max}")
        return raw.astype(np_dtype)
    return np.asarray(value, dtype=np_dtype)


def _array_to_json(arr):
    arr = np.asarray(arr)
    if arr.dtype == object:
        return [{"b64": base64.b64encode(v).decode()} if isinstance(v, bytes) else v for v in arr.tolist()]
    return arr.tolist()


class RestHandler(BaseHTTPRequestHandler):
    manager: ModelManager = None
    max_body_bytes: int = 64 << 20
    server_version = "tf-fanogan-rest"

    def log_message(self, fmt, *args):  # quiet by default
        log.debug(fmt, *args)

    def _send(self, status: int, payload: dict):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, e: ServingError):
        self._send(HTTP_CODES.get(e.code, 500), {"error": e.message})

    def send_error(self, code, message=None, explain=None):
        """The http.server's own errors (malformed request line, unsupported method) in TF
        Serving's JSON shape instead of an HTML page."""
        self.close_connection = True
        try:
            self._send(code, {"error": message or explain or self.responses.get(code, ("error",))[0]})
        except OSError:
            pass

    def _guarded(self, fn):
        """Every failure is a JSON reply: ServingError with its code, anything else a 500 with one log line."""
        try:
            fn()
        except ServingError as e:
            self._error(e)
        except Exception as e:  # noqa: BLE001 -- never drop the connection without a reply
            log.error("REST %s %s failed: %s: %s", self.command, self.path, type(e).__name__, e)
            self._send(500, {"error": f"Internal: {type(e).__name__}: {e}"})

    def _not_allowed(self):
        self.close_connection = True
        self._send(405, {"error": f"Method {self.command} not allowed: use GET for status and metadata, "
                                  f"POST for :predict"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def _spec(self, match):
        spec = predict_pb2.PredictRequest().model_spec
        name = match["name"]
        if not MODEL_NAME_RE.match(name):
            raise ServingError("INVALID_ARGUMENT", f"Malformed model name: {name!r}")
        spec.name = name
        if match["version"]:
            version = int(match["version"])
            if version >= 1 << 63:
                raise ServingError("INVALID_ARGUMENT", f"Malformed version: {match['version']} (not a 64-bit integer)")
            spec.version.value = version
        elif match["label"]:
            spec.version_label = match["label"]
        return spec

    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    def _get(self):
        match = _REST_PATH.match(self.path)
        try:
            if not match or match["suffix"] == ":predict":
                raise ServingError("NOT_FOUND", f"Malformed request: GET {self.path}")
            spec = self._spec(match)
            if match["suffix"] == "/metadata":
                req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
                req.model_spec.CopyFrom(spec)
                self._send(200, json_format.MessageToDict(metadata(self.manager, req), preserving_proto_field_name=True))
            else:
                req = get_model_status_pb2.GetModelStatusRequest()
                req.model_spec.CopyFrom(spec)
                self._send(200, json_format.MessageToDict(model_status(self.manager, req),
                                                          preserving_proto_field_name=True,
                                                          always_print_fields_with_no_presence=True))
        except ServingError as e:
            self._error(e)

    def _post(self):
        match = _REST_PATH.match(self.path)
        try:
            if not match or match["suffix"] != ":predict":
                raise ServingError("NOT_FOUND", f"Malformed request: POST {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            if length > self.max_body_bytes:
                self.close_connection = True  # the unread body must not be parsed as a next request
                raise ServingError("INVALID_ARGUMENT",
                                   f"Request body of {length} bytes exceeds the limit of {self.max_body_bytes}")
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ServingError("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
            except RecursionError:
                raise ServingError("INVALID_ARGUMENT", "JSON Parse error: nested too deeply") from None
            if not isinstance(body, dict):
                raise ServingError("INVALID_ARGUMENT", "JSON Value: request body must be an object")
            self._send(200, self._predict(self._spec(match), body))
        except ServingError as e:
            self._error(e)

    def _predict(self, spec, body):
        with self.manager.serving(spec) as (_, servable):
            return self._predict_on(servable, body)

    def _predict_on(self, servable, body):
        signature = body.get("signature_name") or SERVING_DEFAULT
        name, sdef = servable.signature(signature)
        if "instances" in body and "inputs" in body:
            raise ServingError("INVALID_ARGUMENT", "Request has both 'instances' (row format) and 'inputs' "
                                                   "(columnar format); give exactly one")
        if "instances" not in body and "inputs" not in body:
            raise ServingError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        aliases = sorted(sdef.inputs)
        try:
            if "instances" in body:
                rows = body["instances"]
                if not isinstance(rows, list) or not rows:
                    raise ServingError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
                if isinstance(rows[0], dict) and not (len(rows[0]) == 1 and "b64" in rows[0]):
                    inputs = {k: _json_to_array([r[k] for r in rows], sdef.inputs[k].dtype) for k in rows[0]
                              if k in sdef.inputs} | {k: None for k in rows[0] if k not in sdef.inputs}
                else:
                    if len(aliases) != 1:
                        raise ServingError("INVALID_ARGUMENT", "instances must be objects for multi-input signatures")
                    inputs = {aliases[0]: _json_to_array(rows, sdef.inputs[aliases[0]].dtype)}
            else:
                cols = body["inputs"]
                if isinstance(cols, dict):
                    inputs = {k: _json_to_array(v, sdef.inputs[k].dtype) if k in sdef.inputs else None
                              for k, v in cols.items()}
                else:
                    inputs = {aliases[0]: _json_to_array(cols, sdef.inputs[aliases[0]].dtype)}
        except (ValueError, TypeError, OverflowError) as e:
            raise ServingError("INVALID_ARGUMENT", f"Failed to process element: {e}") from None
        except RecursionError:
            raise ServingError("INVALID_ARGUMENT", "Failed to process element: nested too deeply") from None
        except KeyError as e:
            raise ServingError("INVALID_ARGUMENT", f"Failed to process element: instance lacks input {e}") from None
        inputs = {k: (v if v is not None else np.zeros(0, np.float32)) for k, v in inputs.items()}
        outputs = servable.run(name, inputs)
        if "instances" in body:
            keys = sorted(outputs)
            n = len(next(iter(outputs.values())))
            if len(keys) == 1:
                return {"predictions": _array_to_json(outputs[keys[0]])}
            return {"predictions": [{k: _array_to_json(outputs[k][i:i + 1])[0] for k in keys} for i in range(n)]}
        if len(outputs) == 1:
            return {"outputs": _array_to_json(next(iter(outputs.values())))}
        return {"outputs": {k: _array_to_json(v) for k, v in outputs.items()}}

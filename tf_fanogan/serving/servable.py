"""One SavedModel version loaded the way TF Serving loads it.

TF Serving uses the session-based C++ loader: restore, run ``__saved_model_init_op``, then
feed and fetch the SignatureDef's tensor names directly, with no dtype casting. Loading with
``tf.saved_model.load`` instead would accept exports that the real server rejects.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np
import tensorflow as tf

from tf_fanogan.serving import tensors
from tf_fanogan.serving.protos import prediction_log_pb2

SERVING_DEFAULT = "serving_default"
WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000


def _quiet_deprecation():
    """The v1 loader is deprecated for Python users, but it is what TF Serving's C++ loader does."""
    try:
        from tensorflow.python.util import deprecation

        return deprecation.silence()
    except (ImportError, AttributeError):
        return contextlib.nullcontext()


class ServingError(Exception):
    """An error with a gRPC status code name (e.g. ``INVALID_ARGUMENT``) and TF Serving's message."""

    def __init__(self, code: str, message: str):
        super().__init__(message[:1024])
        self.code = code
        self.message = message[:1024]


def error_message(message: str) -> str:
    """The informative line of a TF runtime error: the text of a failed in-graph assertion, or
    the first line that is not TF's "Graph execution error:" / "Detected at node" preamble."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed:" in line:
            text = line.split("assertion failed:", 1)[1].strip()
            return text[1:-1].strip() if text.startswith("[") and text.endswith("]") else text
    for line in lines:
        if not line.startswith(("Graph execution error", "Detected at node", "[[", "File ", "{{")):
            return line
    return lines[0] if lines else message


class Servable:
    """A loaded version: ``run(signature, inputs, output_filter)`` and its SignatureDefs."""

    def __init__(self, path: str):
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default(), _quiet_deprecation():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signature_defs = dict(meta_graph.signature_def)
        self.scheduler = None  # a BatchScheduler when the server batches (see serving.batching)
        self._cv = threading.Condition()
        self._inflight = 0
        self._closing = False
        self._closed = False

    @property
    def public_signatures(self) -> dict:
        return {k: v for k, v in self.signature_defs.items() if not k.startswith("__")}

    def signature(self, name: str):
        name = name or SERVING_DEFAULT
        if name not in self.public_signatures:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        return name, self.signature_defs[name]

    def prepare(self, signature_name: str, inputs: dict, output_filter=()):
        """Checks a call against its SignatureDef as TF Serving does.

        Returns ``(aliases, feeds, fetches)``: the output aliases to return, the feed dict keyed
        by tensor name and the tensor names to fetch.
        """
        name, sdef = self.signature(signature_name)
        expected = set(sdef.inputs)
        sent = set(inputs)
        if sent != expected:
            extra, missing = sorted(sent - expected), sorted(expected - sent)
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}.")
        aliases = list(output_filter) or sorted(sdef.outputs)
        for alias in aliases:
            if alias not in sdef.outputs:
                raise ServingError("INVALID_ARGUMENT",
                                   f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                                   f"{{{','.join(sorted(sdef.outputs))}}}.")
        feeds = {}
        for i, key in enumerate(sorted(sdef.inputs)):
            info = sdef.inputs[key]
            value = inputs[key]
            got = tensors.dtype_of(value)
            if got != info.dtype:
                raise ServingError("INVALID_ARGUMENT",
                                   f"Expects arg[{i}] to be {tensors.DT_NAMES.get(info.dtype, info.dtype)} but "
                                   f"{tensors.DT_NAMES.get(got, got)} is provided")
            feeds[info.name] = value
        return aliases, feeds, [sdef.outputs[a].name for a in aliases]

    def execute(self, feeds: dict, fetches: list) -> list:
        """One session run; TF errors become :class:`ServingError` with TF Serving's codes."""
        try:
            return self.session.run(fetches, feed_dict=feeds)
        except tf.errors.OpError as e:
            code = {tf.errors.InvalidArgumentError: "INVALID_ARGUMENT",
                    tf.errors.ResourceExhaustedError: "RESOURCE_EXHAUSTED"}.get(type(e), "INTERNAL")
            raise ServingError(code, error_message(e.message)) from None
        except ValueError as e:  # the Python session checks placeholder ranks itself
            raise ServingError("INVALID_ARGUMENT", str(e).split("\n")[0]) from None

    def run(self, signature_name: str, inputs: dict, output_filter=()) -> dict:
        """Runs one signature on numpy inputs; returns numpy outputs keyed by alias.

        With a :attr:`scheduler` (server-side batching) the call may share a session run with
        concurrent calls; batch-major outputs make the result the same either way.
        """
        aliases, feeds, fetches = self.prepare(signature_name, inputs, output_filter)
        if self.scheduler is not None and feeds and all(np.ndim(v) >= 1 for v in feeds.values()):
            values = self.scheduler.submit(feeds, fetches)
        else:
            values = self.execute(feeds, fetches)
        return dict(zip(aliases, values))

    # -------------------------------------------------------------- lifetime
    def acquire(self) -> None:
        """Marks one request in flight; :meth:`close` waits for it (see :meth:`release`)."""
        with self._cv:
            if self._closing:
                raise ServingError("UNAVAILABLE", f"Servable {self.path} is being unloaded")
            self._inflight += 1

    def release(self) -> None:
        with self._cv:
            self._inflight -= 1
            last = self._closing and self._inflight == 0
        if last:
            self._really_close()

    def warmup(self) -> int:
        """Replays ``assets.extra/tf_serving_warmup_requests``; a failing record fails the load."""
        path = os.path.join(self.path, WARMUP_PATH)
        if not os.path.isfile(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise ServingError("INVALID_ARGUMENT", f"too many warmup records in {path} (max {MAX_WARMUP_RECORDS})")
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if not log.HasField("predict_log"):
                raise ServingError("UNIMPLEMENTED", f"{path}: only predict_log warmup records are supported")
            request = log.predict_log.request
            self.run(request.model_spec.signature_name,
                     {k: tensors.to_numpy(v) for k, v in request.inputs.items()}, request.output_filter)
        return count

    def close(self) -> None:
        """Unloads: now if no request is in flight, else when the last one releases."""
        with self._cv:
            self._closing = True
            idle = self._inflight == 0
        if idle:
            self._really_close()

    def _really_close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
        if self.scheduler is not None:
            self.scheduler.stop()
        self.session.close()

"""A local server speaking TF Serving's gRPC and REST protocols over the real protos.

For development and tests: production runs the real ``tensorflow_model_server`` (see
``serving/README.md``); the client works unchanged against both. What it shares with TF
Serving: the session-based loader (:mod:`tf_fanogan.serving.servable`), the
``<base>/<model>/<int version>`` layout polled for new versions, availability-preserving
transitions (a new version loads before the old one unloads; a broken one leaves the old one
serving), warm-up replay, ``models.config`` (latest{N} / all / specific, version labels),
``HandleReloadConfigRequest``, and TF Serving's status codes and messages.
"""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import ThreadingHTTPServer

import grpc

from tf_fanogan.serving.grpc_service import ModelServicer, PredictionServicer
from tf_fanogan.serving.manager import (  # noqa: F401 -- re-exported
    ModelEntry,
    ModelManager,
    entries_from_flags,
    parse_models_config,
)
from tf_fanogan.serving.protos import (
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tf_fanogan.serving.rest import RestHandler


class ModelServer:
    """gRPC (+ optional REST) server over a :class:`ModelManager`.

    Args:
        entries: :class:`ModelEntry` list (from flags or a models.config).
        host: Bind address; 127.0.0.1 unless told otherwise.
        port: gRPC port (0 picks a free one; see ``.port``).
        rest_port: REST port, None for no REST (0 picks a free one).
        poll_interval: Seconds between file-system polls (TF Serving: 1).
        max_message_bytes: Largest gRPC message accepted or sent (TF Serving: 2 GiB).
        batching: :class:`~tf_fanogan.serving.batching.BatchingParameters` to batch concurrent
            requests server-side (TF Serving's ``--enable_batching``), or None.
    """

    def __init__(self, entries, host="127.0.0.1", port=8500, rest_port=None, poll_interval=1.0,
                 max_workers=16, max_message_bytes=(1 << 31) - 1, max_rest_body_bytes=64 << 20, warmup=True, batching=None):
        self.manager = ModelManager(entries, poll_interval=poll_interval, warmup=warmup, batching=batching)
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.so_reuseport", 0)]  # a port in use is an error, not a second silent listener
        self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.manager), self.grpc_server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.manager), self.grpc_server)
        try:
            self.port = self.grpc_server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # grpcio raises where older versions returned 0
            self.port = 0
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}: the port is in use or not permitted "
                          f"(choose another with --port)")
        self.host = host
        self.rest = None
        self.rest_port = None
        if rest_port is not None:
            handler = type("Handler", (RestHandler,), {"manager": self.manager, "max_body_bytes": max_rest_body_bytes})
            try:
                self.rest = ThreadingHTTPServer((host, rest_port), handler)
            except OSError as e:
                self.grpc_server.stop(None)
                raise OSError(f"cannot bind REST to {host}:{rest_port}: {e.strerror or e} (choose another with "
                              f"--rest_api_port, or -1 for no REST)") from None
            self.rest.daemon_threads = True
            self.rest_port = self.rest.server_address[1]

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "ModelServer":
        self.grpc_server.start()
        self.manager.start()
        if self.rest:
            threading.Thread(target=self.rest.serve_forever, name="rest", daemon=True).start()
        return self

    def stop(self):
        if self.rest:
            self.rest.shutdown()
            self.rest.server_close()
        self.grpc_server.stop(grace=1).wait()
        self.manager.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

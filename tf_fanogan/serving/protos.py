"""TF Serving's generated protos and gRPC stubs, loaded without the TensorFlow runtime.

``tensorflow_serving.apis`` imports ``tensorflow.core.framework.*_pb2``, and importing any
``tensorflow.*`` module normally executes ``tensorflow/__init__.py`` -- seconds and hundreds of
megabytes. When TensorFlow is not imported yet, this module puts empty placeholder packages
(with the real ``__path__``) in ``sys.modules`` just long enough to load the ``*_pb2`` files,
then removes the placeholders, so a later ``import tensorflow`` runs normally and reuses the
very same proto modules. The descriptors are byte-identical to those TF Serving uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

_PACKAGES = ("tensorflow", "tensorflow.core", "tensorflow.core.framework", "tensorflow.core.protobuf",
             "tensorflow.core.example", "tensorflow_serving", "tensorflow_serving.apis",
             "tensorflow_serving.config")

_MODULES = {
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "tensor_shape_pb2": "tensorflow.core.framework.tensor_shape_pb2",
    "meta_graph_pb2": "tensorflow.core.protobuf.meta_graph_pb2",
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "get_model_metadata_pb2": "tensorflow_serving.apis.get_model_metadata_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "model_management_pb2": "tensorflow_serving.apis.model_management_pb2",
    "prediction_log_pb2": "tensorflow_serving.apis.prediction_log_pb2",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "model_server_config_pb2": "tensorflow_serving.config.model_server_config_pb2",
}


def _find_root(name: str) -> str:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed: pip install 'tensorflow-serving-api>=2.21,<2.22'")
    return list(spec.submodule_search_locations)[0]


def _load():
    if "tensorflow" in sys.modules and not getattr(sys.modules["tensorflow"], "_tf_fanogan_placeholder", False):
        return {k: importlib.import_module(v) for k, v in _MODULES.items()}
    roots = {"tensorflow": _find_root("tensorflow"), "tensorflow_serving": _find_root("tensorflow_serving")}
    inserted = []
    try:
        for pkg in _PACKAGES:
            if pkg in sys.modules:
                continue
            top = pkg.split(".")[0]
            module = types.ModuleType(pkg)
            module.__path__ = [os.path.join(roots[top], *pkg.split(".")[1:])]
            module._tf_fanogan_placeholder = True
            sys.modules[pkg] = module
            inserted.append(pkg)
        return {k: importlib.import_module(v) for k, v in _MODULES.items()}
    finally:
        for pkg in inserted:
            if getattr(sys.modules.get(pkg), "_tf_fanogan_placeholder", False):
                del sys.modules[pkg]


_loaded = _load()
tensor_pb2 = _loaded["tensor_pb2"]
types_pb2 = _loaded["types_pb2"]
tensor_shape_pb2 = _loaded["tensor_shape_pb2"]
meta_graph_pb2 = _loaded["meta_graph_pb2"]
predict_pb2 = _loaded["predict_pb2"]
get_model_metadata_pb2 = _loaded["get_model_metadata_pb2"]
get_model_status_pb2 = _loaded["get_model_status_pb2"]
model_management_pb2 = _loaded["model_management_pb2"]
prediction_log_pb2 = _loaded["prediction_log_pb2"]
prediction_service_pb2_grpc = _loaded["prediction_service_pb2_grpc"]
model_service_pb2_grpc = _loaded["model_service_pb2_grpc"]
model_server_config_pb2 = _loaded["model_server_config_pb2"]

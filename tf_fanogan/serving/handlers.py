"""Protocol-neutral request handlers: Predict, GetModelMetadata and GetModelStatus on the
manager's servables, in and out as TF Serving's protos (used by gRPC and REST alike)."""

from __future__ import annotations

import numpy as np

from tf_fanogan.serving import tensors
from tf_fanogan.serving.manager import ModelManager
from tf_fanogan.serving.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
)
from tf_fanogan.serving.servable import SERVING_DEFAULT, ServingError


def predict(manager: ModelManager, request) -> "predict_pb2.PredictResponse":
    if not request.HasField("model_spec"):
        raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
    inputs = {}
    for key, proto in request.inputs.items():
        try:
            inputs[key] = tensors.to_numpy(proto)
        except (TypeError, ValueError) as e:
            raise ServingError("INVALID_ARGUMENT", f"input {key}: {e}") from None
    signature = request.model_spec.signature_name or SERVING_DEFAULT
    with manager.serving(request.model_spec) as (version, servable):
        outputs = servable.run(signature, inputs, list(request.output_filter))
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature
    for key, value in outputs.items():
        response.outputs[key].CopyFrom(tensors.to_proto(np.asarray(value), typed=True))
    return response


def metadata(manager: ModelManager, request) -> "get_model_metadata_pb2.GetModelMetadataResponse":
    if not request.HasField("model_spec"):
        raise ServingError("INVALID_ARGUMENT", "Missing ModelSpec")
    if "signature_def" not in request.metadata_field:
        raise ServingError("INVALID_ARGUMENT", "Metadata field signature_def is not specified")
    with manager.serving(request.model_spec) as (version, servable):
        signature_defs = servable.signature_defs
    sdm = get_model_metadata_pb2.SignatureDefMap()
    for name, sdef in signature_defs.items():
        sdm.signature_def[name].CopyFrom(sdef)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = version
    response.metadata["signature_def"].Pack(sdm)
    return response


def model_status(manager: ModelManager, request):
    spec = request.model_spec
    if not spec.name:
        raise ServingError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    rows = manager.status(spec.name, version=spec.version.value if choice == "version" else None,
                          label=spec.version_label if choice == "version_label" else None)
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state, error in rows:
        s = response.model_version_status.add(version=version, state=state)
        if error:
            s.status.error_code = 13  # INTERNAL, as TF Serving reports a failed load
            s.status.error_message = error
    return response

"""TF Serving's gRPC services (``PredictionService``, ``ModelService``) over the handlers."""

from __future__ import annotations

import grpc

from tf_fanogan.serving.handlers import metadata, model_status, predict
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.protos import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)
from tf_fanogan.serving.servable import ServingError


def _abort(context, e: ServingError):
    context.abort(getattr(grpc.StatusCode, e.code), e.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify/Regress/MultiInference answer UNIMPLEMENTED."""

    def __init__(self, manager):
        self.manager = manager

    def Predict(self, request, context):
        try:
            return predict(self.manager, request)
        except ServingError as e:
            _abort(context, e)

    def GetModelMetadata(self, request, context):
        try:
            return metadata(self.manager, request)
        except ServingError as e:
            _abort(context, e)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        try:
            return model_status(self.manager, request)
        except ServingError as e:
            _abort(context, e)

    def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        try:
            entries = [ModelEntry.from_proto(m) for m in request.config.model_config_list.config]
            self.manager.reload_config(entries)
        except ServingError as e:
            response.status.error_code = getattr(grpc.StatusCode, e.code).value[0]
            response.status.error_message = e.message
        return response

"""TensorProto <-> numpy: what the server refuses to read."""


import grpc
import pytest

from tf_fanogan.serving import tensors
from tf_fanogan.serving.protos import predict_pb2, types_pb2


def test_grpc_tensor_protos_with_negative_dimensions_or_out_of_range_values_are_refused(client):
    from tf_fanogan.serving.protos import tensor_pb2, tensor_shape_pb2

    bad_shape = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.0] * 4, tensor_shape=
                                       tensor_shape_pb2.TensorShapeProto(dim=[{"size": -1}, {"size": 4}]))
    with pytest.raises(ValueError, match=r"negative dimension"):
        tensors.to_numpy(bad_shape)
    wide = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, int_val=[300],
                                  tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 1}]))
    with pytest.raises(ValueError, match=r"outside uint8's range 0\.\.255"):
        tensors.to_numpy(wide)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fanogan"
    request.model_spec.signature_name = "score"
    request.inputs["images"].CopyFrom(bad_shape)
    with pytest.raises(grpc.RpcError) as e:
        client._predict.Predict(request, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "negative dimension" in e.value.details()

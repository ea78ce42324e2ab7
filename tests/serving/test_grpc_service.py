"""PredictionService / ModelService over gRPC: metadata, TF Serving's error codes, bad inputs."""


import grpc
import numpy as np
import pytest

from tf_fanogan import signatures as sig
from tf_fanogan.serving.client import FAnoGANClient, NotFound
from tf_fanogan.serving.protos import predict_pb2
from helpers import report
from helpers.serving import encoded, raw_predict, rgb_png


def test_metadata_skips_internal_signatures(client):
    meta = client.metadata()
    assert not [k for k in meta if k.startswith("__")]
    assert meta["score"]["inputs"]["images"] == ("float", (-1, 16, 16, 1))
    assert meta["score_uint8"]["inputs"]["images"][0] == "uint8"
    assert set(meta["score"]["outputs"]) == {*sig.SCORE_OUTPUTS, sig.P_VALUE, sig.IS_ANOMALY}


def test_error_codes_match_tf_serving(server):
    spec = predict_pb2.PredictRequest().model_spec
    good = {"images": np.zeros((1, 16, 16, 1), np.float32)}
    code, msg = raw_predict(server, None, good)
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    code, msg = raw_predict(server, spec, good)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg == "ModelSpec has no name specified."
    spec.name = "nope"
    code, msg = raw_predict(server, spec, good)
    assert code == grpc.StatusCode.NOT_FOUND and msg.startswith("Servable not found for request: Latest(nope)")
    spec.name = "fanogan"
    spec.version.value = 7
    code, msg = raw_predict(server, spec, good)
    assert code == grpc.StatusCode.NOT_FOUND and msg.startswith("Servable not found for request: Specific(fanogan, 7)")
    spec.version_label = "prod"
    code, msg = raw_predict(server, spec, good)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("Unrecognized servable version label: prod")
    spec.ClearField("version_label")
    code, msg = raw_predict(server, spec, good, signature="nope")
    assert code == grpc.StatusCode.FAILED_PRECONDITION and msg == 'Serving signature key "nope" not found.'
    code, msg = raw_predict(server, spec, {**good, "extra": good["images"]})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("input size does not match signature")
    code, msg = raw_predict(server, spec, {"imgs": good["images"]})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("input size does not match signature")
    code, msg = raw_predict(server, spec, {"images": good["images"].astype(np.float64)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("Expects arg[0] to be float but double is provided")
    code, msg = raw_predict(server, spec, good, output_filter=["nope"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("output tensor alias not found in signature: nope")
    code, msg = raw_predict(server, spec, {"images": np.zeros((1, 8, 8, 1), np.float32)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    status_client = FAnoGANClient(server.target, "nope")
    with pytest.raises(NotFound, match="Could not find any versions of model nope"):
        status_client.status()
    # The server keeps working after every error.
    assert FAnoGANClient(server.target, "fanogan").score(good["images"])["anomaly_score"].shape == (1,)
    report(test="bad_input_grpc_codes", cases=12)  # the 11 Predict calls and the status call above


GRPC_BAD_INPUTS = [  # (signature, inputs, words the INVALID_ARGUMENT message must contain)
    ("score", {"images": np.zeros((0, 16, 16, 1), np.float32)}, "images: empty batch (0 images)"),
    ("score_uint8", {"images": np.zeros((0, 16, 16, 1), np.uint8)}, "images: empty batch (0 images)"),
    ("score_image_bytes", {"image_bytes": np.array([], dtype=object)}, "image_bytes: empty batch (0 images)"),
    ("score_image_bytes", {"image_bytes": np.array([b"garbage"], dtype=object)},
     "image_bytes[0]: not a PNG, JPEG or BMP image (7 bytes)"),
    ("score_image_bytes", {"image_bytes": np.array([encoded("PNG"), encoded("PNG"), b"xx"], dtype=object)},
     "image_bytes[2]: not a PNG, JPEG or BMP image (2 bytes)"),
    ("score_image_bytes", {"image_bytes": np.array([encoded("PNG"), encoded("GIF")], dtype=object)},
     "image_bytes[1]: a GIF image; send PNG, JPEG or BMP"),
    ("score_image_bytes", {"image_bytes": np.array([encoded("PNG")[:30]], dtype=object)}, "Invalid PNG"),
    ("score", {"images": np.full((1, 16, 16, 1), np.nan, np.float32)}, "images: NaN or infinite pixel values"),
    ("score", {"images": np.full((1, 16, 16, 1), 5.0, np.float32)}, "images: pixel values outside [0, 1]"),
    ("residual_map", {"images": np.zeros((0, 16, 16, 1), np.float32)}, "images: empty batch (0 images)"),
    # the in-process reader's colour policy, in the graph (data.color: auto refuses a colour image)
    ("score_image_bytes", {"image_bytes": np.array([encoded("PNG"), rgb_png("JPEG")], dtype=object)},
     "image_bytes[1]: a colour image (its channels differ by up to"),
    ("score_image_bytes", {"image_bytes": np.array([rgb_png()], dtype=object)},
     "image_bytes[0]: a colour image (its channels differ by up to 150 grey levels, more than data.color_tolerance 8)"
     " but the model is grayscale; set data.color: gray"),
]


@pytest.mark.parametrize("signature,inputs,words", GRPC_BAD_INPUTS, ids=range(len(GRPC_BAD_INPUTS)))
def test_grpc_bad_inputs_say_what_is_wrong(server, client, signature, inputs, words):
    spec = predict_pb2.PredictRequest().model_spec
    spec.name = "fanogan"
    code, msg = raw_predict(server, spec, inputs, signature=signature)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and words in msg and "Graph execution error" not in msg, msg
    assert client.score(np.zeros((1, 16, 16, 1), np.float32))["anomaly_score"].shape == (1,)  # still serving
    report(test="bad_input_grpc", case=words, of=len(GRPC_BAD_INPUTS))

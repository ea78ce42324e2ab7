"""The local model server: version swaps, labels, config reload, the shipped configs."""

import os
import shutil

import grpc
import numpy as np
import pytest


from tf_fanogan.serving import tensors
from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument
from tf_fanogan.serving.protos import model_server_config_pb2, predict_pb2
from tf_fanogan.serving.servable import Servable
from tf_fanogan.serving.manager import ModelEntry, parse_models_config
from tf_fanogan.serving.server import ModelServer
from helpers.serving import images01, publish, wait_for


def test_version_swap_broken_version_and_warmup(trained_detector, trained_export, tmp_path):
    root = str(tmp_path)
    publish(trained_export, root, "m")
    with ModelServer([ModelEntry("m", os.path.join(root, "m"))], port=0, poll_interval=0.2) as srv:
        c = FAnoGANClient(srv.target, "m")
        c.wait_until_available(60)
        x = images01(trained_detector, 2, 80)
        assert c.predict("score", {"images": x}, return_version=True)[1] == 1
        publish(trained_export, root, "m")  # version 2, written aside and renamed in as export does
        assert wait_for(lambda: c.predict("score", {"images": x}, return_version=True)[1] == 2)
        assert wait_for(lambda: [r["version"] for r in c.status()] == [2]), c.status()
        # A broken version 3 (its warm-up record has the wrong shape) fails to load; 2 keeps serving.
        v3 = os.path.join(root, "m", "3")
        shutil.copytree(os.path.join(root, "m", "2"), os.path.join(root, "m", ".tmp-3"))
        from tf_fanogan.serving.protos import prediction_log_pb2
        import tensorflow as tf

        req = predict_pb2.PredictRequest()
        req.model_spec.signature_name = "score"
        req.inputs["images"].CopyFrom(tensors.to_proto(np.zeros((1, 9, 9, 1), np.float32)))
        with tf.io.TFRecordWriter(os.path.join(root, "m", ".tmp-3", "assets.extra", "tf_serving_warmup_requests")) as w:
            w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req)).SerializeToString())
        os.rename(os.path.join(root, "m", ".tmp-3"), v3)
        assert wait_for(lambda: any(r["version"] == 3 and r["state"] == "END" for r in c.status())), c.status()
        row3 = [r for r in c.status() if r["version"] == 3][0]
        assert "Failed to load" in row3["error"]
        assert c.predict("score", {"images": x}, return_version=True)[1] == 2
        assert Servable(os.path.join(root, "m", "2")).warmup() == 12


def test_labels_and_config_reload(trained_detector, trained_export, tmp_path):
    root = str(tmp_path)
    publish(trained_export, root, "m")
    publish(trained_export, root, "m")
    config = f"""model_config_list {{ config {{ name: "m" base_path: "{root}/m" model_platform: "tensorflow"
      model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
      version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }} }}"""
    with ModelServer(parse_models_config(config), port=0, poll_interval=0) as srv:
        x = images01(trained_detector, 1, 90)
        for label, version in (("stable", 1), ("canary", 2)):
            c = FAnoGANClient(srv.target, "m", version_label=label)
            assert c.predict("score", {"images": x}, return_version=True)[1] == version
        with pytest.raises(InvalidArgument, match="Unrecognized servable version label: prod"):
            FAnoGANClient(srv.target, "m", version_label="prod").score(x)
        assert [r["version"] for r in FAnoGANClient(srv.target, "m").status()] == [1, 2]
        # Promote canary to stable through HandleReloadConfigRequest.
        from tf_fanogan.serving.protos import model_management_pb2, model_service_pb2_grpc
        from google.protobuf import text_format

        stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(srv.target))
        new = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(config.replace('value: 1 }', 'value: 2 }'), new)
        resp = stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=new))
        assert resp.status.error_code == 0, resp.status.error_message
        assert FAnoGANClient(srv.target, "m", version_label="stable").predict("score", {"images": x}, return_version=True)[1] == 2
        # A label pointing at a version that is not available is refused; the old config stays.
        text_format.Parse(config.replace('value: 2 }', 'value: 9 }'), new := model_server_config_pb2.ModelServerConfig())
        resp = stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=new))
        assert resp.status.error_code != 0 and "not currently available" in resp.status.error_message
        assert FAnoGANClient(srv.target, "m", version_label="canary").predict("score", {"images": x}, return_version=True)[1] == 2



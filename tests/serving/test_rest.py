"""TF Serving's REST API: status, metadata, row and columnar predict, JSON errors, the README's curl block."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.serving.client import InvalidArgument, RestClient
from helpers import REPO, blobs, report
from helpers.serving import TOL, images01


def test_rest_status_metadata_row_and_columnar(trained_detector, server):
    import urllib.request

    url = f"http://127.0.0.1:{server.rest_port}/v1/models/fanogan"
    status = json.loads(urllib.request.urlopen(url).read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    x = images01(trained_detector, 2, 70)
    ref = trained_detector.score(x)["anomaly_score"]

    def post(body):
        req = urllib.request.Request(url + ":predict", data=json.dumps(body).encode())
        return json.loads(urllib.request.urlopen(req).read())

    rows = post({"signature_name": "score", "instances": x.tolist()})["predictions"]
    np.testing.assert_allclose([r["anomaly_score"] for r in rows], ref, **TOL)
    cols = post({"signature_name": "score", "inputs": {"images": x.tolist()}})["outputs"]
    np.testing.assert_allclose(cols["anomaly_score"], ref, **TOL)
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", "fanogan")
    np.testing.assert_allclose(rest.score(x)["anomaly_score"], ref, **TOL)
    with pytest.raises(InvalidArgument):
        rest.predict("score", {"images": np.zeros((1, 8, 8, 1), np.float32)})
    bad = urllib.request.Request(url + ":predict", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400 and "error" in json.loads(e.value.read())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/..%2F..%2Fetc")
    assert e.value.code in (400, 404)


REST_BAD_REQUESTS = [  # (method, path, body, HTTP code, words the error must contain)
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[300]] * 16] * 16]}, 400,
     "outside uint8's range 0..255"),
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[-1]] * 16] * 16]}, 400,
     "outside uint8's range 0..255"),
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[0.5]] * 16] * 16]}, 400,
     "expected integers for uint8"),
    ("POST", ":predict", {"instances": [[0.0]], "inputs": [[0.0]]}, 400, "both 'instances'"),
    ("POST", ":predict", {"signature_name": "score"}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", ":predict", b"[" * 100000 + b"]" * 100000, 400, "nested too deeply"),
    ("POST", ":predict", {"instances": [[[[[[[[[[[[0.0]]]]]]]]]]]] * 2}, 400, "images"),
    ("GET", "/versions/99999999999999999999999", None, 400, "not a 64-bit integer"),
    ("GET", "/versions/99999999999999999999999/metadata", None, 400, "not a 64-bit integer"),
    ("GET", "/versions/7", None, 404, "version"),
    ("PUT", ":predict", {"instances": []}, 405, "Method PUT not allowed"),
    ("DELETE", "", None, 405, "Method DELETE not allowed"),
    ("PATCH", "/metadata", None, 405, "Method PATCH not allowed"),
    ("GET", ":predict", None, 404, "Malformed request"),
    ("POST", "/metadata", {}, 404, "Malformed request"),
]


@pytest.mark.parametrize("method,suffix,body,code,words", REST_BAD_REQUESTS)
def test_rest_failures_are_json_errors_with_tf_serving_codes(server, method, suffix, body, code, words):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, f"/v1/models/fanogan{suffix}", body=data, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    payload = json.loads(reply.read())
    conn.close()
    assert reply.status == code and list(payload) == ["error"] and words in payload["error"], (reply.status, payload)
    ok = urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/fanogan")  # still serving
    assert ok.status == 200
    report(test="bad_input_rest", case=f"{method} {suffix} -> {code}", of=len(REST_BAD_REQUESTS))


def test_the_readme_rest_examples_run_as_written(server, tmp_path):
    """serving/README.md's REST block, run by bash against the test server (its port, 16x16)."""
    import shutil as sh

    if not (sh.which("curl") and sh.which("base64") and sh.which("bash")):
        pytest.skip("the README's REST examples need curl, base64 and bash")
    readme = open(os.path.join(REPO, "serving",
                               "README.md")).read()
    block = readme.split("<!-- rest-examples -->")[1].split("<!-- /rest-examples -->")[0]
    script = block.split("```bash\n")[1].split("```")[0]
    script = script.replace("localhost:8501", f"127.0.0.1:{server.rest_port}").replace("* 32", "* 16")
    script = script.replace("python -c", f"{sys.executable} -c")
    Image.fromarray(blobs(1, size=24, seed=5)[0]).save(tmp_path / "cell.png")
    commands = [c.strip() for c in script.replace("\\\n", " ").splitlines() if c.strip().startswith(("curl", "/"))]
    replies = []
    for command in commands:
        out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (command, out.stderr)
        if command.startswith("curl"):
            replies.append(json.loads(out.stdout))
    assert len(replies) == 5 and not any("error" in r for r in replies), replies
    assert replies[0]["model_version_status"][0]["state"] == "AVAILABLE"
    assert "score_image_bytes" in replies[1]["metadata"]["signature_def"]["signature_def"]
    row, col, uint8 = replies[2], replies[3], replies[4]
    assert row["predictions"][0]["anomaly_score"] == pytest.approx(col["outputs"]["anomaly_score"][0], rel=1e-6)
    assert len(uint8["predictions"]) == 2 and {"anomaly_score", "is_anomaly"} <= set(uint8["predictions"][0])

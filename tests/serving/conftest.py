"""Session fixtures of the serving tests: one export of the trained detector and one server per worker."""

import os

import pytest

from helpers.serving import publish
from tf_fanogan.serving.client import FAnoGANClient
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.server import ModelServer


@pytest.fixture(scope="session")
def base(trained_export, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("saved_models"))
    publish(trained_export, root, "fanogan")
    return root


@pytest.fixture(scope="session")
def server(base):
    with ModelServer([ModelEntry("fanogan", os.path.join(base, "fanogan"))], port=0, rest_port=0,
                     poll_interval=0) as srv:
        assert srv.manager.wait_for("fanogan", 60)
        yield srv


@pytest.fixture(scope="session")
def client(server):
    with FAnoGANClient(server.target, "fanogan", timeout=30) as c:
        yield c

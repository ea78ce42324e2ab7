"""The model manager's config watcher and `fanogan serve` run in a thread."""

import os
import threading
import time

import pytest

from tf_fanogan.serving.export import export_detector
from helpers.serving import publish
from tf_fanogan.serving.manager import ConfigWatcher, ModelEntry, ModelManager


def _config(path, names_and_paths):
    body = "".join(f'config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
                   for n, p in names_and_paths)
    path.write_text(f"model_config_list {{\n{body}}}\n")


def test_the_watcher_reloads_a_changed_config_and_keeps_the_old_one_on_a_bad_file(trained_export, tmp_path):
    publish(trained_export, str(tmp_path / "sm"), "a", warmup=False)
    publish(trained_export, str(tmp_path / "sm"), "b", warmup=False)
    cfg = tmp_path / "models.config"
    _config(cfg, [("a", tmp_path / "sm" / "a")])
    manager = ModelManager([ModelEntry("a", str(tmp_path / "sm" / "a"))], poll_interval=0, warmup=False)
    manager.poll()
    watcher = ConfigWatcher(manager, str(cfg), interval=0.1)
    assert watcher.check() is False  # unchanged
    time.sleep(0.01)
    _config(cfg, [("a", tmp_path / "sm" / "a"), ("b", tmp_path / "sm" / "b")])
    os.utime(cfg, (time.time() + 5, time.time() + 5))
    assert watcher.check() is True
    manager.poll()
    assert manager.wait_for("b", 30)
    cfg.write_text("model_config_list { config { name: ")  # broken: logged, old config kept
    os.utime(cfg, (time.time() + 10, time.time() + 10))
    assert watcher.check() is False
    assert manager.wait_for("a", 1) and manager.wait_for("b", 1)
    # A file caught between truncate and write unloads nothing, and is looked at again even if
    # the written file then has the same modification time.
    stamp = time.time() + 15
    cfg.write_text("")
    os.utime(cfg, (stamp, stamp))
    assert watcher.check() is False
    assert manager.wait_for("a", 1) and manager.wait_for("b", 1)
    _config(cfg, [("b", tmp_path / "sm" / "b")])
    os.utime(cfg, (stamp, stamp))
    assert watcher.check() is True
    manager.stop()


def test_fanogan_serve_runs_in_a_thread_and_stops(trained_export, tmp_path):
    from tf_fanogan import cli

    publish(trained_export, str(tmp_path / "sm"), "m", warmup=False)
    before = len(cli.SERVE_STOP)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", cli.main(
        ["serve", "--model_name", "m", "--model_base_path", str(tmp_path / "sm" / "m"), "--port", "0",
         "--rest_api_port", "-1"])))
    thread.start()
    deadline = time.monotonic() + 60
    while len(cli.SERVE_STOP) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(cli.SERVE_STOP) > before, "serve did not start"
    cli.SERVE_STOP[-1].set()
    thread.join(30)
    assert not thread.is_alive() and result["rc"] == 0


def test_a_base_path_without_versions_warns_at_every_poll(tmp_path, caplog):
    import logging

    from tf_fanogan.serving.manager import ModelEntry, ModelManager

    manager = ModelManager([ModelEntry("m", str(tmp_path / "missing")), ModelEntry("e", str(tmp_path))],
                           poll_interval=0, warmup=False)
    missing = (f"No versions of servable m found under base path {tmp_path}/missing (the path does not exist). "
               "Did you forget to name your leaf directory as a number (eg. '/1/')?")
    empty = (f"No versions of servable e found under base path {tmp_path}. Did you forget to name your leaf "
             "directory as a number (eg. '/1/')?")
    counts = []
    with caplog.at_level(logging.WARNING, logger="tf_fanogan.serving.manager"):
        for _ in range(3):
            manager.poll()
            lines = [r.getMessage() for r in caplog.records]
            counts.append((lines.count(missing), lines.count(empty)))
    assert counts[0] >= (1, 1) and counts[1] == (counts[0][0] + 1, counts[0][1] + 1)
    assert counts[2] == (counts[0][0] + 2, counts[0][1] + 2)  # one warning per poll until a version appears


def test_ports_in_use_are_one_line_errors(tmp_path, capsys):
    import socket

    from tf_fanogan.cli import main
    from tf_fanogan.serving.manager import ModelEntry
    from tf_fanogan.serving.server import ModelServer

    with ModelServer([ModelEntry("m", str(tmp_path))], port=0, poll_interval=0) as first:
        with pytest.raises(OSError, match=rf"cannot bind gRPC to 127.0.0.1:{first.port}: the port is in use"):
            ModelServer([ModelEntry("m", str(tmp_path))], port=first.port, poll_interval=0)
        assert main(["serve", "--model_name", "m", "--model_base_path", str(tmp_path), "--port", str(first.port),
                     "--rest_api_port", "-1"]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"fanogan serve: error: cannot bind gRPC to 127.0.0.1:{first.port}") and "\n" not in err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(OSError, match=rf"cannot bind REST to 127.0.0.1:{taken.getsockname()[1]}: Address already"):
            ModelServer([ModelEntry("m", str(tmp_path))], port=0, rest_port=taken.getsockname()[1], poll_interval=0)
    finally:
        taken.close()


def test_export_removes_what_killed_exports_left(trained_detector, tmp_path):
    import socket
    import subprocess

    model_dir = tmp_path / "m"
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    left = model_dir / f".tmp-1-{host}-{dead.pid}-0123abcd"  # a killed export of this host
    running = model_dir / f".tmp-1-{host}-{os.getpid()}-4567abcd"  # one still being written
    old = model_dir / ".tmp-1-1a2b3c4d"  # the old naming, a week old
    for d in (left, running, old):
        d.mkdir(parents=True)
    os.utime(old, (time.time() - 7 * 86400,) * 2)
    path = export_detector(trained_detector, str(tmp_path), "m", warmup=False)
    assert os.path.basename(path) == "1"
    assert sorted(os.listdir(model_dir)) == sorted(["1", running.name])

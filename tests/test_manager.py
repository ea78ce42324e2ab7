"""The model manager's config watcher and `fanogan serve` run in a thread."""

import os
import threading
import time

from tf_fanogan.serving.export import export_detector
from tf_fanogan.serving.manager import ConfigWatcher, ModelEntry, ModelManager


def _config(path, names_and_paths):
    body = "".join(f'config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n'
                   for n, p in names_and_paths)
    path.write_text(f"model_config_list {{\n{body}}}\n")


def test_the_watcher_reloads_a_changed_config_and_keeps_the_old_one_on_a_bad_file(trained_detector, tmp_path):
    export_detector(trained_detector, str(tmp_path / "sm"), "a", warmup=False)
    export_detector(trained_detector, str(tmp_path / "sm"), "b", warmup=False)
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
    manager.stop()


def test_fanogan_serve_runs_in_a_thread_and_stops(trained_detector, tmp_path):
    from tf_fanogan import cli

    export_detector(trained_detector, str(tmp_path / "sm"), "m", warmup=False)
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

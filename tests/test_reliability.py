"""Reliability: resume after SIGKILL, the NaN guard, killed writers, atomic replacement.

Where ``TF_FANOGAN_RELIABILITY_REPORT`` names a file, the tests append their measured figures
to it as JSON lines (``benchmarks/reliability.py`` collects them for BENCHMARKS.md).
"""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.utils import atomic
from tf_fanogan.training.callbacks import TrainingDiverged
from tf_fanogan.detector import FAnoGAN
from helpers import REPO, blobs, report, tiny_config

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}


def _epochs(log_path):
    if not os.path.exists(log_path):
        return []
    with open(log_path) as f:
        return [int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]


def _run_until(cmd, log_path, min_rows, timeout=240):
    """Starts ``cmd`` and SIGKILLs it once ``log_path`` has ``min_rows`` epoch rows."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=REPO)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if len(_epochs(log_path)) >= min_rows:
            time.sleep(random.Random(len(log_path)).uniform(0.0, 0.3))  # land anywhere in the next epoch
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.02)
    err = proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ""
    proc.kill()
    pytest.fail(f"training ended or stalled before {min_rows} epochs were logged in {log_path}: {err}")


def test_training_resumes_after_sigkill_in_each_stage(tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    for i, img in enumerate(blobs(40, size=16, seed=11)):
        Image.fromarray(img).save(data / f"{i:03d}.png")
    out = str(tmp_path / "det")
    work = out + ".work"
    cmd = [sys.executable, "-m", "tf_fanogan.cli", "train", "--data", str(data), "--out", out, "--quiet",
           "--set", "model.image_size=16", "--set", "model.dim=8", "--set", "model.latent_dim=16",
           "--set", "gan.epochs=30", "--set", "gan.batch_size=4", "--set", "encoder.epochs=30",
           "--set", "encoder.batch_size=4", "--set", "gan.critic_steps=2", "--set", "gan.jit_compile=false", "--set", "encoder.jit_compile=false"]
    gan_log, enc_log = os.path.join(work, "gan_log.csv"), os.path.join(work, "encoder_log.csv")

    _run_until(cmd, gan_log, 3)  # kill 1: in stage 1
    done_before_kill1 = len(_epochs(gan_log))
    assert not os.path.exists(out) and os.path.isdir(os.path.join(work, "backup_gan"))

    _run_until(cmd, enc_log, 2)  # kill 2: in stage 2 (stage 1 must have resumed and finished)
    gan_epochs = _epochs(gan_log)
    lost1 = done_before_kill1 - gan_epochs[done_before_kill1]  # completed epochs trained again
    assert gan_epochs[-1] == 29 and os.path.isdir(os.path.join(work, "gan_done"))
    done_before_kill2 = len(_epochs(enc_log))

    final = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "Skipping variable loading" not in final.stderr  # optimizer state really restored
    assert _epochs(gan_log) == gan_epochs  # stage 1 was not trained again
    enc_epochs = _epochs(enc_log)
    lost2 = done_before_kill2 - enc_epochs[done_before_kill2]
    assert enc_epochs[-1] == 29
    assert lost1 <= 1 and lost2 <= 1, (lost1, lost2)
    det = FAnoGAN.load(out)
    assert det.trained_ == {"gan": True, "encoder": True}
    assert np.all(np.isfinite(det.score(blobs(4, size=16, seed=12))["anomaly_score"]))
    report(test="resume_after_sigkill", epochs_lost_stage1=max(lost1, 0), epochs_lost_stage2=max(lost2, 0))


class _PoisonAt(__import__("keras").callbacks.Callback):
    """Makes one critic weight NaN at the start of the given epoch (fault injection)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            w = self.model.critic.trainable_weights[0]
            w.assign(np.full(w.shape, np.nan, w.dtype))


def test_nan_guard_stops_and_keeps_the_last_good_backup(normal_images, tmp_path):
    work = str(tmp_path / "work")
    det = FAnoGAN(tiny_config(gan__epochs=3))
    with pytest.raises(TrainingDiverged, match=r"stage 1/2 \(WGAN-GP\): metric '\w+' became nan .* in epoch 2; "
                                               r"training stopped\. The last good state \(end of epoch 1\)"):
        det.fit(normal_images, stage="gan", workdir=work, callbacks=[_PoisonAt(1)], verbose=0)
    meta = json.load(open(os.path.join(work, "backup_gan", "training_metadata.json")))
    assert meta["epoch"] == 1  # one completed epoch is backed up; the diverged one is not
    # The same run resumes from that backup (no poison now) and finishes epochs 2 and 3 only.
    again = FAnoGAN(tiny_config(gan__epochs=3))
    again.fit(normal_images, stage="gan", workdir=work, verbose=0)
    assert _epochs(os.path.join(work, "gan_log.csv")) == [0, 1, 2]
    assert all(np.all(np.isfinite(w)) for w in again.critic.get_weights())


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(normal_images, tmp_path):
    """Weights, optimizer state, noise stream and data order all continue across a resume."""
    straight = FAnoGAN(tiny_config(gan__epochs=3))
    straight.fit(normal_images, stage="gan", workdir=str(tmp_path / "a"), verbose=0)
    work = str(tmp_path / "b")
    interrupted = FAnoGAN(tiny_config(gan__epochs=3))
    with pytest.raises(TrainingDiverged):
        interrupted.fit(normal_images, stage="gan", workdir=work, callbacks=[_PoisonAt(2)], verbose=0)
    resumed = FAnoGAN(tiny_config(gan__epochs=3))
    resumed.fit(normal_images, stage="gan", workdir=work, verbose=0)
    assert _epochs(os.path.join(work, "gan_log.csv")) == [0, 1, 2]  # epoch 3 only, after the resume
    for a, b in zip(straight.generator.get_weights() + straight.critic.get_weights(),
                    resumed.generator.get_weights() + resumed.critic.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_absurd_learning_rate_stops_the_cli_with_one_line(tmp_path, capsys):
    from tf_fanogan.cli import main

    data = tmp_path / "train.npy"
    np.save(data, blobs(40, size=16, seed=3))
    args = ["train", "--data", str(data), "--out", str(tmp_path / "d"), "--quiet",
            "--set", "model.image_size=16", "--set", "model.dim=8", "--set", "model.latent_dim=16",
            "--set", "gan.epochs=2", "--set", "gan.batch_size=4", "--set", "encoder.epochs=1",
            "--set", "encoder.batch_size=4", "--set", "gan.critic_steps=2", "--set", "gan.jit_compile=false", "--set", "encoder.jit_compile=false"]
    code = main(args + ["--set", "gan.learning_rate=1e30"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "became" in err and "training stopped" in err, err
    assert not os.path.exists(tmp_path / "d")
    # A smaller learning rate may resume the same workdir (the learning rate is not part of a
    # run's identity); --fresh starts over deliberately.
    assert main(args + ["--fresh"]) == 0
    assert "--fresh: removed" in capsys.readouterr().out
    assert FAnoGAN.load(str(tmp_path / "d")).trained_ == {"gan": True, "encoder": True}


def test_workdir_refuses_other_data_or_settings(normal_images, tmp_path):
    work = str(tmp_path / "work")
    FAnoGAN(tiny_config()).fit(normal_images, stage="gan", workdir=work, verbose=0)
    with pytest.raises(Exception, match=r"holds a gan run with other data_fingerprint"):
        FAnoGAN(tiny_config()).fit(normal_images[:40], stage="gan", workdir=work, verbose=0)
    with pytest.raises(Exception, match=r"holds a gan run with other gan"):
        FAnoGAN(tiny_config(gan__critic_steps=3)).fit(normal_images, stage="gan", workdir=work, verbose=0)
    # More epochs or another learning rate continue the same run (stage 1 is already finished).
    more = FAnoGAN(tiny_config(gan__epochs=2, gan__learning_rate=5e-5))
    more.fit(normal_images, stage="gan", workdir=work, verbose=0)
    assert more.trained_["gan"]


_WRITER = textwrap.dedent("""
    import os, sys
    import numpy as np
    from tf_fanogan.utils.atomic import write_file_atomically
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.serving.export import export_detector

    src, out = sys.argv[1], sys.argv[2]
    det = FAnoGAN.load(src)
    rows = "".join(f"img_{i},{i * 0.5}\\n" for i in range(20000))
    print("ready", flush=True)
    while True:
        det.save(os.path.join(out, "detector"))
        write_file_atomically(os.path.join(out, "scores.csv"), lambda f: f.write("path,score\\n" + rows))
        export_detector(det, os.path.join(out, "saved_models"), "m", warmup=False)
""")


def test_killed_writers_leave_the_old_state_or_the_new_one(trained_detector, tmp_path):
    from tf_fanogan.serving.export import list_versions
    from tf_fanogan.serving.manager import ModelEntry, ModelManager

    src = trained_detector.save(str(tmp_path / "src"))
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    rng = random.Random(0)
    partial, kills = 0, 0
    for trial in range(4):
        proc = subprocess.Popen([sys.executable, str(script), src, str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=ENV, cwd=REPO, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        # Readers: the detector loader, a CSV reader, the serving version poller.
        det_dir = out / "detector"
        if det_dir.exists() or any(n.startswith(".detector.old-") for n in os.listdir(out)):
            try:
                FAnoGAN.load(str(det_dir))
            except Exception:
                partial += 1
        if (out / "scores.csv").exists():
            lines = (out / "scores.csv").read_text().splitlines()
            partial += int(len(lines) != 20001)
        versions = list_versions(str(out / "saved_models" / "m")) if (out / "saved_models" / "m").exists() else []
        if versions:
            manager = ModelManager([ModelEntry("m", str(out / "saved_models" / "m"), policy="all")],
                                   poll_interval=0, warmup=False)
            states = manager.status("m")
            partial += sum(1 for _, _, error in states if error)
            manager.stop()
    assert kills == 4 and partial == 0
    assert (out / "detector").exists()  # at least one save completed over the trials
    report(test="killed_writers", kills=kills, partial_artefacts_seen=partial)


def test_directory_replacement_is_one_step_or_recoverable(tmp_path, monkeypatch):
    path = str(tmp_path / "d")
    atomic.write_directory_atomically(path, lambda t: open(os.path.join(t, "v"), "w").write("1"))
    atomic.write_directory_atomically(path, lambda t: open(os.path.join(t, "v"), "w").write("2"))
    assert open(os.path.join(path, "v")).read() == "2" and os.listdir(tmp_path) == ["d"]
    # Without RENAME_EXCHANGE, a death between the two renames is undone by the next reader.
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def dying_rename(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the renames")
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", dying_rename)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_directory_atomically(path, lambda t: open(os.path.join(t, "v"), "w").write("3"))
    monkeypatch.setattr(os, "rename", real_rename)
    assert not os.path.exists(path)
    atomic.recover_directory(path)
    assert open(os.path.join(path, "v")).read() == "2"
    # A writer that fails part-way publishes nothing.
    with pytest.raises(RuntimeError):
        atomic.write_file_atomically(str(tmp_path / "f.csv"), lambda f: (f.write("half"), (_ for _ in ()).throw(RuntimeError())))
    assert not (tmp_path / "f.csv").exists() and [n for n in os.listdir(tmp_path) if "tmp" in n] == []


def test_noise_generator_state_is_saved_with_the_trainer(normal_images, tmp_path):
    import keras

    from tf_fanogan.models.wgan_gp import WGANGP

    det = FAnoGAN(tiny_config())
    det.fit(normal_images, stage="gan", verbose=0)

    def trainer():
        gan = WGANGP(det.generator, det.critic, seed=0)
        gan.compile(g_optimizer=keras.optimizers.Adam(1e-4), c_optimizer=keras.optimizers.Adam(1e-4))
        return gan

    gan = trainer()
    gan.seed_generator.next()  # advance the stream as training does
    gan.save_weights(str(tmp_path / "w.weights.h5"))
    fresh = trainer()
    assert not np.array_equal(fresh.seed_generator.state.numpy(), gan.seed_generator.state.numpy())
    fresh.load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_array_equal(fresh.seed_generator.state.numpy(), gan.seed_generator.state.numpy())

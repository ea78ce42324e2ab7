import pytest

from tf_fanogan.config import ConfigError, FAnoGANConfig


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path, suffix):
    cfg = FAnoGANConfig().with_overrides(["model.image_size=32", "encoder.mode=ziz", "gan.gp_weight=5"])
    path = str(tmp_path / f"c{suffix}")
    cfg.save(path)
    assert FAnoGANConfig.load(path) == cfg
    assert cfg.model.image_size == 32 and cfg.encoder.mode == "ziz" and cfg.gan.gp_weight == 5.0


def test_paper_defaults():
    cfg = FAnoGANConfig()
    assert (cfg.model.image_size, cfg.model.dim, cfg.model.latent_dim) == (64, 64, 128)
    assert (cfg.gan.critic_steps, cfg.gan.gp_weight, cfg.gan.learning_rate, cfg.gan.beta_1, cfg.gan.beta_2) == (5, 10.0, 1e-4, 0.0, 0.9)
    assert (cfg.encoder.mode, cfg.encoder.kappa, cfg.encoder.learning_rate) == ("izi_f", 1.0, 5e-5)


@pytest.mark.parametrize("data,match", [
    ({"model": {"image_sise": 32}}, "unknown key"),
    ({"gan": {"epochs": "ten"}}, "must be int"),
    ({"encoder": {"mode": "zzz"}}, "encoder.mode"),
    ({"model": {"channels": 2}}, "channels"),
    ({"model": 5}, "expected a mapping"),
])
def test_bad_configs_name_the_problem(data, match):
    with pytest.raises(ConfigError, match=match):
        FAnoGANConfig.from_dict(data)


def test_bad_override_and_unparsable_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        FAnoGANConfig().with_overrides(["gan.nope=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml"):
        FAnoGANConfig.load(str(bad))


def test_jit_compile_auto_means_xla_on_a_gpu_unless_distributed():
    import tensorflow as tf

    from tf_fanogan import FAnoGAN
    from tf_fanogan.config import resolve_jit_compile

    cfg = FAnoGANConfig()
    assert cfg.gan.jit_compile == "auto" and cfg.encoder.jit_compile == "auto"
    assert resolve_jit_compile("auto", distributed=False, accelerator=True) is True
    assert resolve_jit_compile("auto", distributed=False, accelerator=False) is False
    assert resolve_jit_compile("auto", distributed=True, accelerator=True) is False
    assert resolve_jit_compile(False, distributed=False, accelerator=True) is False
    assert resolve_jit_compile(True, distributed=True, accelerator=False) is True
    small = FAnoGANConfig().with_overrides(["model.image_size=16", "model.dim=8"])
    from tf_fanogan.training.stages import _jit

    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert _jit("auto", FAnoGAN(small).strategy) is gpu
    assert _jit(True, FAnoGAN(small).strategy) is True
    assert _jit("auto", FAnoGAN(small, strategy=tf.distribute.MirroredStrategy(["/cpu:0"])).strategy) is False
    assert FAnoGANConfig().with_overrides(["gan.jit_compile=false"]).gan.jit_compile is False
    with pytest.raises(ConfigError, match="gan.jit_compile"):
        FAnoGANConfig().with_overrides(["gan.jit_compile=sometimes"])

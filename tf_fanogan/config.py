"""Configuration dataclasses for f-AnoGAN, with JSON/YAML round trips.

Only :func:`tf_fanogan.networks.build_networks`, the trainers' factories and the
CLI turn a config into objects; everything else receives objects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

ENCODER_MODES = ("izi_f", "izi", "ziz")


def resolve_jit_compile(value: bool | str, distributed: bool) -> bool:
    """What ``jit_compile="auto"`` means: XLA for the train steps unless a distribution
    strategy is active. Measured in ``benchmarks/speed.py`` on a 2-core CPU, XLA trains
    1.4-1.5x faster at 32x32 width 16 and 1.2-1.3x at the paper's 64x64 width 64; under
    a strategy it stays off, as in Keras' own ``"auto"`` (collectives inside XLA clusters
    are not covered by the equivalence tests). Scoring is never XLA-compiled, so in-process
    scores are the same computation as the exported SavedModel's."""
    if value == "auto":
        return not distributed
    return bool(value)


def _check_jit(value: Any, section: str) -> None:
    if value not in (True, False, "auto") or isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ConfigError(f"{section}.jit_compile must be true, false or \"auto\", got {value!r}")


class ConfigError(ValueError):
    """A configuration value or key is invalid."""


@dataclasses.dataclass
class ModelConfig:
    """Network shapes.

    Attributes:
        image_size: Side of the square model input; a power of two from 16 to 256.
            The number of resampling residual blocks is ``log2(image_size / 4)``.
        channels: 1 (grayscale) or 3 (RGB).
        dim: Base width of the ResNets (64 in the paper).
        latent_dim: Size of z (128 in the paper).
    """

    image_size: int = 64
    channels: int = 1
    dim: int = 64
    latent_dim: int = 128

    def validate(self) -> None:
        s = self.image_size
        if not (isinstance(s, int) and 16 <= s <= 256 and (s & (s - 1)) == 0):
            raise ConfigError(f"model.image_size must be a power of two in [16, 256], got {s!r}")
        if self.channels not in (1, 3):
            raise ConfigError(f"model.channels must be 1 or 3, got {self.channels!r}")
        if not (isinstance(self.dim, int) and self.dim >= 1):
            raise ConfigError(f"model.dim must be a positive integer, got {self.dim!r}")
        if not (isinstance(self.latent_dim, int) and self.latent_dim >= 1):
            raise ConfigError(f"model.latent_dim must be a positive integer, got {self.latent_dim!r}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    @property
    def num_blocks(self) -> int:
        return int(math.log2(self.image_size // 4))


@dataclasses.dataclass
class GANTrainingConfig:
    """Stage 1 (WGAN-GP) settings; defaults are the paper's (Gulrajani et al. 2017).

    Attributes:
        epochs: Passes over the normal training images; one epoch is
            ``len(images) // (batch_size * critic_steps)`` generator updates.
        batch_size: Images per critic update (each critic update gets its own batch).
        critic_steps: Critic updates per generator update.
        gp_weight: Gradient-penalty weight lambda.
        learning_rate, beta_1, beta_2: Adam settings for both networks.
        jit_compile: Compile the train step with XLA: ``"auto"`` (default) compiles it unless
            a distribution strategy is active (see :func:`resolve_jit_compile`), or ``True``/``False``.
    """

    epochs: int = 10
    batch_size: int = 64
    critic_steps: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 1e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    jit_compile: bool | str = "auto"

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "critic_steps"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ConfigError(f"gan.{name} must be a positive integer, got {v!r}")
        if self.gp_weight < 0 or self.learning_rate <= 0:
            raise ConfigError("gan.gp_weight must be >= 0 and gan.learning_rate > 0")
        _check_jit(self.jit_compile, "gan")


@dataclasses.dataclass
class EncoderTrainingConfig:
    """Stage 2 (encoder) settings.

    Attributes:
        mode: ``izi_f`` (paper default), ``izi`` (image residual only) or ``ziz``.
        kappa: Weight of the critic-feature residual, in training and in scoring.
        epochs, batch_size: As usual.
        learning_rate: RMSprop learning rate (5e-5 as in the authors' code).
        rho, epsilon: RMSprop settings; ``rho=0.9, epsilon=1e-10`` are TF1's
            ``RMSPropOptimizer`` defaults used by the authors (Keras' default epsilon is 1e-7).
        jit_compile: As :attr:`GANTrainingConfig.jit_compile`.
    """

    mode: str = "izi_f"
    kappa: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 5e-5
    rho: float = 0.9
    epsilon: float = 1e-10
    jit_compile: bool | str = "auto"

    def validate(self) -> None:
        if self.mode not in ENCODER_MODES:
            raise ConfigError(f"encoder.mode must be one of {ENCODER_MODES}, got {self.mode!r}")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 1):
                raise ConfigError(f"encoder.{name} must be a positive integer, got {v!r}")
        _check_jit(self.jit_compile, "encoder")
        if self.kappa < 0 or self.learning_rate <= 0:
            raise ConfigError("encoder.kappa must be >= 0 and encoder.learning_rate > 0")


@dataclasses.dataclass
class FAnoGANConfig:
    """Everything a detector needs: shapes, both training stages, seed and precision.

    Attributes:
        model: Network shapes.
        gan: Stage 1 settings.
        encoder: Stage 2 settings.
        seed: Seed for weights, noise and shuffling.
        mixed_precision: Train under the ``mixed_float16`` policy (GPU).
        score_batch_size: Batch size used by bulk scoring (does not change scores).
    """

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    gan: GANTrainingConfig = dataclasses.field(default_factory=GANTrainingConfig)
    encoder: EncoderTrainingConfig = dataclasses.field(default_factory=EncoderTrainingConfig)
    seed: int = 0
    mixed_precision: bool = False
    score_batch_size: int = 256

    def validate(self) -> "FAnoGANConfig":
        self.model.validate()
        self.gan.validate()
        self.encoder.validate()
        if not (isinstance(self.score_batch_size, int) and self.score_batch_size >= 1):
            raise ConfigError(f"score_batch_size must be a positive integer, got {self.score_batch_size!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "FAnoGANConfig":
        """Builds a config, rejecting unknown keys and values of the wrong type."""
        return _from_dict(cls, data, source).validate()

    def save(self, path: str) -> None:
        text = to_text(self.to_dict(), path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    @classmethod
    def load(cls, path: str) -> "FAnoGANConfig":
        return cls.from_dict(read_mapping(path), source=path)

    def with_overrides(self, overrides: list[str]) -> "FAnoGANConfig":
        """Returns a copy with ``section.key=value`` overrides (values parsed as YAML)."""
        import yaml

        data = self.to_dict()
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key=value")
            key, raw = item.split("=", 1)
            node = data
            parts = key.strip().split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"override {item!r}: unknown section {part!r}")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"override {item!r}: unknown key {key!r}")
            node[parts[-1]] = yaml.safe_load(raw)
        return FAnoGANConfig.from_dict(data, source="overrides")


def _from_dict(cls, data: Any, source: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _from_dict(type(default), value, f"{source}.{name}")
            continue
        if name == "jit_compile":  # true, false or "auto"; validate() checks the value
            kwargs[name] = value
            continue
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is float and isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string; accept what Python reads as a number.
            try:
                value = float(value)
            except ValueError:
                pass
        if type(value) is not expected:
            raise ConfigError(
                f"{source}: key {name!r} of {cls.__name__} must be {expected.__name__}, "
                f"got {type(value).__name__} ({value!r})"
            )
        kwargs[name] = value
    return cls(**kwargs)


def read_mapping(path: str) -> dict[str, Any]:
    """Reads a JSON or YAML file into a dict, with errors that name the file."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text) or {}
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot parse: {e}") from None


def to_text(data: dict[str, Any], path: str) -> str:
    import yaml

    if path.endswith((".yaml", ".yml")):
        return yaml.safe_dump(data, sort_keys=False)
    return json.dumps(data, indent=2) + "\n"

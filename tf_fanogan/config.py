"""Configuration dataclasses for f-AnoGAN, with JSON/YAML round trips.

Only :func:`tf_fanogan.models.networks.build_networks`, the trainers' factories and the
CLI turn a config into objects; everything else receives objects.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tf_fanogan.config_files import from_dict as _from_dict
from tf_fanogan.config_files import read_mapping, to_text  # noqa: F401 -- re-exported
from tf_fanogan.errors import ConfigError  # noqa: F401 -- re-exported: raised by every check below

ENCODER_MODES = ("izi_f", "izi", "ziz")
LATENT_PRIORS = ("normal", "uniform")
ENCODER_HEADS = ("auto", "linear", "tanh")
LR_DECAYS = ("none", "linear")
AUGMENTATIONS = ("none", "flip", "translate", "flip_translate")
COLORS = ("auto", "gray", "rgb")
SMALL_IMAGES = ("upsample", "pad", "refuse")
RESIDUAL_POOLINGS = ("mean", "topk")
SCORING_METHODS = ("fanogan", "critic_nn")
PAD_FILLS = ("edge", "zeros")
TILE_SCORES = ("max", "top_k_mean")


def resolve_jit_compile(value: bool | str, distributed: bool, accelerator: bool) -> bool:
    """``jit_compile="auto"``, as Keras' own: XLA for the train steps on a GPU with no strategy.
    Off on a CPU: ``benchmarks/speed.py`` measured XLA 1.40x faster (32x32 width 16) on one
    2-core host and 0.79x on an AVX-512 one. Off under a strategy (collectives inside XLA
    clusters are not covered by the equivalence tests). Scoring is never XLA-compiled."""
    if value == "auto":
        return accelerator and not distributed
    return bool(value)


def _check_jit(value: Any, section: str) -> None:
    if value not in (True, False, "auto") or isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ConfigError(f"{section}.jit_compile must be true, false or \"auto\", got {value!r}")


def _check_choice(value: Any, allowed: tuple, key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def _check_float(value: Any, key: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> None:
    """Finite and within [low, high] (open where asked): checked before any training starts."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{key} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(f"{key} must be {'<' if high_open else '<='} {high:g}, got {value!r}")


def _check_budget(value: Any, key: str) -> None:
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{key} must be a positive number of updates (or unset to count epochs), got {value!r}")


@dataclasses.dataclass
class ModelConfig:
    """Network shapes.

    Attributes:
        image_size: Side of the square model input; a power of two from 16 to 256.
            The number of resampling residual blocks is ``log2(image_size / 4)``.
        channels: 1 (grayscale) or 3 (RGB).
        dim: Base width of the ResNets (64 in the paper).
        latent_dim: Size of z (128 in the paper).
        latent_prior: ``normal`` (z ~ N(0, I), the authors' default) or ``uniform``
            (z ~ U(-1, 1)). Every draw of z uses it (see :mod:`tf_fanogan.models.latent`).
        encoder_head: The encoder's output activation: ``auto`` (linear for the normal prior,
            tanh for the uniform one), or ``linear`` / ``tanh`` explicitly. Detectors saved
            before ``latent_prior`` existed load with ``tanh`` (what they were trained with).
    """

    image_size: int = 64
    channels: int = 1
    dim: int = 64
    latent_dim: int = 128
    latent_prior: str = "normal"
    encoder_head: str = "auto"

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
        _check_choice(self.latent_prior, LATENT_PRIORS, "model.latent_prior")
        _check_choice(self.encoder_head, ENCODER_HEADS, "model.encoder_head")

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
        jit_compile: Compile the train step with XLA: ``"auto"`` (default) compiles it on a GPU
            when no distribution strategy is active (see :func:`resolve_jit_compile`), or
            ``True``/``False``.
        iterations: Budget in generator updates, as the authors' code counts it (each with
            ``critic_steps`` critic updates); when set it replaces ``epochs``.
        lr_decay: ``none`` or ``linear`` (both learning rates decay linearly to 0 over the
            run: the WGAN-GP ResNet recipe of Gulrajani et al. 2017).
        ema: Momentum of an exponential moving average of the generator's weights (e.g.
            0.999), used by stage 2 and scoring; 0 (default) keeps the last weights.
        augment: ``none``, ``flip``, ``translate`` or ``flip_translate``: random horizontal
            flips / translations by up to 1/8 of the side, applied alike to real and
            generated images before the critic (differentiable, so the generator is not
            taught the augmentation); for small training sets.
    """

    epochs: int = 10
    batch_size: int = 64
    critic_steps: int = 5
    gp_weight: float = 10.0
    learning_rate: float = 1e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    jit_compile: bool | str = "auto"
    iterations: int | None = None
    lr_decay: str = "none"
    ema: float = 0.0
    augment: str = "none"

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "critic_steps"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"gan.{name} must be a positive integer, got {v!r}")
        _check_budget(self.iterations, "gan.iterations")
        _check_float(self.gp_weight, "gan.gp_weight", 0.0)
        _check_float(self.learning_rate, "gan.learning_rate", 0.0, low_open=True)
        _check_float(self.beta_1, "gan.beta_1", 0.0, 1.0, high_open=True)
        _check_float(self.beta_2, "gan.beta_2", 0.0, 1.0, high_open=True)
        _check_float(self.ema, "gan.ema", 0.0, 1.0, high_open=True)
        _check_choice(self.lr_decay, LR_DECAYS, "gan.lr_decay")
        _check_choice(self.augment, AUGMENTATIONS, "gan.augment")
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
        iterations: Budget in encoder updates; when set it replaces ``epochs``.
        lr_decay: ``none`` or ``linear`` (to 0 over the run).
        early_stopping: Patience in epochs on the validation izi_f (``val_izi_f``): training
            stops after this many epochs without improvement and keeps the best epoch's
            weights; 0 (default) is off. Needs normal validation images.
    """

    mode: str = "izi_f"
    kappa: float = 1.0
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 5e-5
    rho: float = 0.9
    epsilon: float = 1e-10
    jit_compile: bool | str = "auto"
    iterations: int | None = None
    lr_decay: str = "none"
    early_stopping: int = 0

    def validate(self) -> None:
        _check_choice(self.mode, ENCODER_MODES, "encoder.mode")
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"encoder.{name} must be a positive integer, got {v!r}")
        if not (isinstance(self.early_stopping, int) and self.early_stopping >= 0):
            raise ConfigError(f"encoder.early_stopping must be an integer >= 0 (epochs), got {self.early_stopping!r}")
        _check_budget(self.iterations, "encoder.iterations")
        _check_jit(self.jit_compile, "encoder")
        _check_float(self.kappa, "encoder.kappa", 0.0)
        _check_float(self.learning_rate, "encoder.learning_rate", 0.0, low_open=True)
        _check_float(self.rho, "encoder.rho", 0.0, 1.0, high_open=True)
        _check_float(self.epsilon, "encoder.epsilon", 0.0)
        _check_choice(self.lr_decay, LR_DECAYS, "encoder.lr_decay")


@dataclasses.dataclass
class DataConfig:
    """How images of any file become the model's input, on every path alike: training,
    ``FAnoGAN.score``, ``fanogan score``, ``beam-score`` and the exported ``score_image_bytes``
    graph that TF Serving and ``fanogan serve`` run.

    Attributes:
        color: How an image is brought to ``model.channels``. ``auto`` (default): a grey image
            is repeated for an RGB model; an RGB image is grey for a grayscale model when its
            channels agree within ``color_tolerance`` (grey pixels stored as RGB, often after a
            JPEG round trip) and is then converted to luma, otherwise it is refused with the fix
            in the message. ``gray``: every colour image is converted to luma (ITU-R 601:
            0.299 R + 0.587 G + 0.114 B, as PIL's ``convert("L")``); needs ``model.channels: 1``.
            ``rgb``: every image is RGB (grey repeated); needs ``model.channels: 3``.
            Alpha is dropped under every policy.
        color_tolerance: For ``auto``, the largest difference between two channels of one
            pixel, in 8-bit grey levels (0-255; 16-bit images are compared on the same scale),
            for which an RGB image still counts as grey. 0 accepts only exactly equal channels.
        small_images: An image with a side shorter than ``model.image_size``: ``upsample``
            (default, as peers do) resizes each short side up to the model size, bilinearly;
            ``pad`` centres the image and fills the missing rows/columns (``pad_fill``);
            ``refuse`` makes it an error naming the image. A side longer than the model size is
            then area-reduced as always (a 28x28 image for a 32x32 model is upsampled to 32x32;
            a 20x100 one becomes 32x100, then 32x32).
        pad_fill: For ``pad``: ``edge`` repeats the border pixels, ``zeros`` fills with black.
        tile_stride: Unset (default): every image is resized to the model size. A positive
            integer: images are used at native resolution, cut into model-size tiles on a grid
            of this stride (the last row and column moved in to reach the far edges;
            :mod:`tf_fanogan.scoring.tiled`). Training learns from every tile of every normal
            image; scoring scores every tile and gives the image ``tile_score`` of its tile
            scores; residual maps are stitched to full resolution (overlaps averaged). An image
            smaller than one tile follows ``small_images``.
        tile_score: The image's score from its tiles: ``max`` (an image is anomalous iff one
            of its tiles is) or ``top_k_mean`` (the mean of the ``tile_top_k`` highest).
        tile_top_k: Tiles averaged by ``top_k_mean``.
    """

    color: str = "auto"
    color_tolerance: float = 8.0
    small_images: str = "upsample"
    pad_fill: str = "edge"
    tile_stride: int | None = None
    tile_score: str = "max"
    tile_top_k: int = 5

    def validate(self, channels: int) -> None:
        _check_choice(self.color, COLORS, "data.color")
        _check_float(self.color_tolerance, "data.color_tolerance", 0.0, 255.0)
        _check_choice(self.small_images, SMALL_IMAGES, "data.small_images")
        _check_choice(self.pad_fill, PAD_FILLS, "data.pad_fill")
        for key in ("tile_stride", "tile_top_k"):
            value = getattr(self, key)
            if not (value is None and key == "tile_stride") and not (
                    isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                what = "pixels, or unset for no tiling" if key == "tile_stride" else "tiles"
                raise ConfigError(f"data.{key} must be a positive integer ({what}), got {value!r}")
        _check_choice(self.tile_score, TILE_SCORES, "data.tile_score")
        if self.color == "gray" and channels != 1:
            raise ConfigError(f"data.color: gray needs model.channels: 1 (got {channels}); use auto or rgb for an "
                              "RGB model")
        if self.color == "rgb" and channels != 3:
            raise ConfigError(f"data.color: rgb needs model.channels: 3 (got {channels}); use auto or gray for a "
                              "grayscale model")

    def image_policy(self) -> dict[str, Any]:
        """Keyword arguments of :func:`tf_fanogan.data.images.to_unit_range` and of the exported decoder."""
        return {"color": self.color, "color_tolerance": float(self.color_tolerance),
                "small_images": self.small_images, "pad_fill": self.pad_fill}


@dataclasses.dataclass
class ScoringConfig:
    """How the anomaly score is made from its two terms (the defaults are the paper's).

    Attributes:
        normalize: z-score the residual and feature terms with their mean and standard
            deviation on the normal hold-out (stored by ``calibrate``) before combining them:
            ``A = (A_R - m_R) / s_R + kappa * (A_D - m_D) / s_D``. The two terms have different
            spreads on normal data, so without it the wider one dominates the sum. Until the
            detector is calibrated its anomaly score is the raw sum.
        residual_pooling: ``mean`` (the paper: mean squared residual over all pixels) or
            ``topk``: the mean of the largest ``topk_fraction`` of the squared residual map
            (channels averaged, 3x3 box-smoothed), so that a small local defect is not diluted
            by the rest of the image.
        topk_fraction: For ``topk``, the fraction of pixels pooled, in (0, 1].
        method: ``fanogan`` (the paper's ``A_R + kappa * A_D``) or ``critic_nn`` (beyond the
            paper): the RMS distance of f(x) to the nearest of a memory of normal training
            images' f (:mod:`tf_fanogan.scoring.memory`); A_R, A_D and the maps stay as before.
        memory_size: For ``critic_nn``, the most training images (or tiles) the memory holds
            (a seeded subset when there are more): ``memory_size x features x 4`` bytes.

    Changing these after calibration needs a new ``calibrate`` (the threshold, the hold-out
    scores and the statistics belong to the score they were computed with).
    """

    normalize: bool = False
    residual_pooling: str = "mean"
    topk_fraction: float = 0.01
    method: str = "fanogan"
    memory_size: int = 8192

    def validate(self) -> None:
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"scoring.normalize must be true or false, got {self.normalize!r}")
        _check_choice(self.residual_pooling, RESIDUAL_POOLINGS, "scoring.residual_pooling")
        _check_float(self.topk_fraction, "scoring.topk_fraction", 0.0, 1.0, low_open=True)
        _check_choice(self.method, SCORING_METHODS, "scoring.method")
        if not (isinstance(self.memory_size, int) and not isinstance(self.memory_size, bool) and self.memory_size >= 1):
            raise ConfigError(f"scoring.memory_size must be a positive number of images, got {self.memory_size!r}")
        if self.method == "critic_nn" and self.normalize:
            raise ConfigError("scoring.normalize combines A_R and A_D, which scoring.method critic_nn does not "
                              "use; set one of them")


@dataclasses.dataclass
class FAnoGANConfig:
    """Everything a detector needs: shapes, both training stages, seed and precision.

    Attributes:
        model: Network shapes.
        data: How image files become the model's input (colour and small-image policies).
        scoring: How the anomaly score is made (normalisation, residual pooling, critic-feature memory).
        gan: Stage 1 settings.
        encoder: Stage 2 settings.
        seed: Seed for weights, noise and shuffling.
        mixed_precision: Train under the ``mixed_float16`` policy (GPU).
        score_batch_size: Batch size used by bulk scoring (does not change scores).
    """

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    gan: GANTrainingConfig = dataclasses.field(default_factory=GANTrainingConfig)
    encoder: EncoderTrainingConfig = dataclasses.field(default_factory=EncoderTrainingConfig)
    scoring: ScoringConfig = dataclasses.field(default_factory=ScoringConfig)
    seed: int = 0
    mixed_precision: bool = False
    score_batch_size: int = 256

    def validate(self) -> "FAnoGANConfig":
        self.model.validate()
        self.data.validate(self.model.channels)
        self.gan.validate()
        self.encoder.validate()
        self.scoring.validate()
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

"""Baselines of the paper's comparison table (Schlegl et al. 2019, Table 2), set up fairly.

- :class:`ConvAutoencoder` -- the "AE" row: the f-AnoGAN encoder trunk and generator trained
  end to end on normal images with a pixel MSE; the score is the image residual.
  :func:`fit_autoencoder` trains it to convergence: the learning rate is chosen from a grid
  and training stops early, both on the **normal** validation loss only.
- :class:`IterativeMapping` -- the "iterative" row (AnoGAN, Schlegl et al. 2017): for each
  image, z is optimised by back-propagation through the trained, frozen generator. z starts
  from a seeded draw of the generator's prior (or from E(x)), is kept on the prior's support
  after every step (:func:`tf_fanogan.models.latent.project`), and follows either AnoGAN's own
  objective ``(1 - lambda) * sum|x - G(z)| + lambda * sum|f(x) - f(G(z))|`` (lambda = 0.1,
  L1) or f-AnoGAN's izi_f objective. :func:`choose_learning_rate` picks the step size on
  normal hold-out images. Batched and compiled into one graph, so its cost is the method's.
- :func:`nearest_neighbour_distance` -- not in the paper: a reference with no training, the pixel
  distance of an image to its nearest normal training image. Where a learned detector does not
  beat it, the detector has not yet learned more than a memory of the training set holds.
  The same distance in the critic's feature space f is a scoring option of the package
  (``scoring.method: critic_nn``, :mod:`tf_fanogan.scoring.memory`).
- The critic-feature score alone (A_D) and the izi / ziz encoders need no code here: they are
  ``feature_score`` of :func:`tf_fanogan.scoring.forward.score_batch` and ``EncoderTrainingConfig.mode``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan.data import images as data_lib
from tf_fanogan.models import latent
from tf_fanogan.scoring import forward as scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import ModelConfig
from tf_fanogan.models.networks import Encoder, Generator

OBJECTIVES = ("izi_f", "anogan")
INITS = ("prior", "encoder", "zero")
ANOGAN_SCORE = "anogan_score"


class ConvAutoencoder(keras.Model):
    """Convolutional autoencoder with f-AnoGAN's trunk sizes: ``Generator(Encoder(x))``.

    Trained with ``fit`` on normal images in [-1, 1] (x -> x) under an MSE loss; scored by
    :meth:`score` as the mean squared image residual per image (batch-independent: batch
    norms run in inference mode). The bottleneck is linear.
    """

    def __init__(self, image_size=32, channels=1, dim=16, latent_dim=128, name="autoencoder", **kwargs):
        super().__init__(name=name, **kwargs)
        cfg = dict(image_size=image_size, channels=channels, dim=dim, latent_dim=latent_dim)
        self.model_config = ModelConfig(**cfg)
        self.encoder = Encoder(**cfg, head="linear", name="ae_encoder")
        self.decoder = Generator(**cfg, name="ae_decoder")

    def call(self, images, training=False):
        return self.decoder(self.encoder(images, training=training), training=training)

    def get_config(self):
        c = self.model_config
        return {"name": self.name, "image_size": c.image_size, "channels": c.channels,
                "dim": c.dim, "latent_dim": c.latent_dim}

    def score(self, images, batch_size: int = 256) -> np.ndarray:
        """Per-image mean squared residual of images (uint8/uint16/[0, 1] floats)."""
        c = self.model_config
        x = data_lib.to_unit_range(images, c.image_size, c.channels)
        fn = self._score_fn()
        return np.concatenate([fn(tf.constant(x[s])).numpy() for s in data_lib.batches(len(x), batch_size)])

    def _score_fn(self):
        if getattr(self, "_compiled_score", None) is None:
            @tf.function(input_signature=[tf.TensorSpec((None,) + self.model_config.image_shape, tf.float32)])
            def fn(x01):
                x = scoring.to_model_units(x01)
                return tf.reduce_mean(tf.square(x - tf.cast(self(x, training=False), tf.float32)), axis=[1, 2, 3])
            self._compiled_score = fn
        return self._compiled_score


def fit_autoencoder(train, validation, model: ModelConfig, learning_rates=(1e-4, 3e-4, 1e-3),
                    max_updates: int = 4000, patience: int = 5, batch_size: int = 32, seed: int = 0,
                    verbose=0) -> tuple[ConvAutoencoder, dict]:
    """Trains the AE baseline to convergence, choosing on normal validation images only.

    For each learning rate (Adam), trains for up to ``max_updates`` updates in epochs of one
    pass over ``train``, stops after ``patience`` epochs without a lower validation MSE and
    keeps the best epoch's weights; the rate with the lowest validation MSE wins.

    Args:
        train, validation: Normal images (N, S, S, C) float32 in [-1, 1].
        model: Network shapes (the AE uses f-AnoGAN's encoder trunk and generator).

    Returns:
        The chosen autoencoder and a record: per rate the best validation MSE and the epochs
        and updates it took, and the chosen rate.
    """
    from tf_fanogan.training import schedule

    steps = max(1, len(train) // batch_size)
    record = {"learning_rates": {}, "max_updates": max_updates, "patience": patience}
    best = None
    for lr in learning_rates:
        keras.utils.set_random_seed(seed)
        ae = ConvAutoencoder(model.image_size, model.channels, model.dim, model.latent_dim)
        ae.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
        keep = schedule.KeepBest(patience, monitor="val_loss")
        hist = ae.fit(train, train, batch_size=batch_size, epochs=max(1, max_updates // steps),
                      validation_data=(validation, validation), callbacks=[keep], verbose=verbose, shuffle=True)
        val = float(np.min(hist.history["val_loss"]))
        epochs = len(hist.history["val_loss"])
        record["learning_rates"][f"{lr:g}"] = {"val_mse": val, "epochs": epochs, "updates": epochs * steps,
                                               "best_epoch": int(np.argmin(hist.history["val_loss"])) + 1}
        if best is None or val < best[0]:
            best = (val, lr, ae)
    record["chosen_learning_rate"] = best[1]
    return best[2], record


class IterativeMapping:
    """AnoGAN's per-image latent search, batched and compiled into one graph.

    For each image, z starts from ``init`` and takes ``steps`` Adam updates on the summed
    per-image objective (so every image's search is independent of the rest of its batch),
    projected back onto the prior's support after each update. At each step listed in
    ``record_at`` the current z is scored by the one scoring function (``anomaly_score`` =
    izi_f score, ``residual_score``, ``feature_score``, ``z_distance``) and by AnoGAN's score
    (``anogan_score``: the AnoGAN objective's value at that z, Schlegl et al. 2017, eq. 3).

    Float rounding differs between batch shapes, and Adam amplifies it on near-zero gradients:
    scores for one image searched in batches of different sizes agree to ~1e-7 relative over
    10 steps, ~2e-3 over 40 (measured on CPU).

    Args:
        generator, critic: The trained, frozen f-AnoGAN networks.
        steps: Updates of z per image (500 in AnoGAN, 300 in the f-AnoGAN paper).
        learning_rate: Adam step size for z (choose it with :func:`choose_learning_rate`).
        kappa: Weight of the critic-feature residual of the izi_f objective and score.
        objective: ``anogan`` (L1 residual and L1 feature matching, weighted by ``lam``) or
            ``izi_f`` (MSE residual + kappa * MSE of the features).
        init: ``prior`` (a seeded draw per image, fixed by the image's position in the call),
            ``encoder`` (E(x), given as ``encoder``) or ``zero``.
        latent_prior: The generator's prior, ``normal`` or ``uniform``: the draws of ``prior``
            and the projection.
        encoder: Needed for ``init="encoder"``.
        lam: AnoGAN's lambda (0.1).
        record_at: Steps at which scores are taken (default: the last step only).
        seed: Seed of the prior draws.
    """

    def __init__(self, generator, critic, steps: int = 500, learning_rate: float = 0.05, kappa: float = 1.0,
                 objective: str = "anogan", init: str = "prior", latent_prior: str = "normal", encoder=None,
                 lam: float = 0.1, record_at=None, seed: int = 0):
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if init == "encoder" and encoder is None:
            raise ValueError("init='encoder' needs the encoder")
        self.generator, self.critic, self.encoder = generator, critic, encoder
        self.steps, self.learning_rate, self.kappa = int(steps), float(learning_rate), float(kappa)
        self.objective, self.init, self.latent_prior, self.lam, self.seed = objective, init, latent_prior, lam, seed
        self.record_at = tuple(sorted(set(record_at or (self.steps,))))
        if self.record_at[0] < 0 or self.record_at[-1] > self.steps:
            raise ValueError(f"record_at must lie in [0, {self.steps}], got {self.record_at}")
        self.latent_dim = generator.input_shape[-1]
        shape = (None,) + tuple(generator.output_shape[1:])
        self._search = tf.function(self._graph, input_signature=[
            tf.TensorSpec(shape, tf.float32), tf.TensorSpec((None, self.latent_dim), tf.float32)])

    def _losses(self, x, real_features, z):
        fake = tf.cast(self.generator(z, training=False), tf.float32)
        _, fake_features = self.critic(fake, training=False)
        fake_features = tf.cast(fake_features, tf.float32)
        anogan = ((1.0 - self.lam) * tf.reduce_sum(tf.abs(x - fake), axis=[1, 2, 3])
                  + self.lam * tf.reduce_sum(tf.abs(real_features - fake_features), axis=1))
        # The izi_f objective is score_batch's A(x) for this z, spelled out so that f(x) is computed
        # once per search rather than once per step; the final scores come from score_batch itself.
        izi_f = (tf.reduce_mean(tf.square(x - fake), axis=[1, 2, 3])
                 + self.kappa * tf.reduce_mean(tf.square(real_features - fake_features), axis=1))
        return anogan, izi_f

    def _scores(self, x, real_features, z):
        fixed = lambda _images, training=False: z  # noqa: E731 -- the searched z plays the encoder
        out = scoring.score_batch(self.generator, self.critic, fixed, x, self.kappa)
        result = {k: out[k] for k in sig.SCORE_OUTPUTS}
        result[ANOGAN_SCORE] = self._losses(x, real_features, z)[0]
        return result

    def _graph(self, x01, z0):
        x = scoring.to_model_units(x01)
        _, real_features = self.critic(x, training=False)
        real_features = tf.cast(real_features, tf.float32)
        z = z0
        if self.init == "encoder":
            z = latent.project(tf.cast(self.encoder(x, training=False), tf.float32), self.latent_prior)
        m = tf.zeros_like(z)
        v = tf.zeros_like(z)
        lr, b1, b2, eps = self.learning_rate, 0.9, 0.999, 1e-8
        recorded = {}
        if 0 in self.record_at:
            recorded[0] = self._scores(x, real_features, z)
        t = 0
        for stop in [s for s in self.record_at if s > 0]:
            # Python loop over the recording points, tf loop between them (one graph).
            def body(i, z, m, v):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    anogan, izi_f = self._losses(x, real_features, z)
                    loss = tf.reduce_sum(anogan if self.objective == "anogan" else izi_f)
                g = tape.gradient(loss, z)
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * tf.square(g)
                k = tf.cast(i, tf.float32)
                z = z - lr * (m / (1 - b1 ** k)) / (tf.sqrt(v / (1 - b2 ** k)) + eps)
                return i + 1, latent.project(z, self.latent_prior), m, v

            _, z, m, v = tf.while_loop(lambda i, *_: i <= stop, body, (tf.constant(t + 1), z, m, v))
            t = stop
            recorded[stop] = self._scores(x, real_features, z)
        return {f"{k}_at_{s}": val for s, out in recorded.items() for k, val in out.items()}

    def initial_z(self, n: int) -> np.ndarray:
        """The seeded start of each image's search (fixed by its position in the call)."""
        if self.init != "prior":
            return np.zeros((n, self.latent_dim), np.float32)
        return latent.sample_numpy(np.random.default_rng(self.seed), (n, self.latent_dim), self.latent_prior)

    def search(self, images01, batch_size: int = 64) -> dict[int, dict[str, np.ndarray]]:
        """Scores at every step of ``record_at``: ``{step: {name: (N,) array}}``."""
        x = np.asarray(images01, np.float32)
        z0 = self.initial_z(len(x))
        parts = [self._search(tf.constant(x[s]), tf.constant(z0[s])) for s in data_lib.batches(len(x), batch_size)]
        flat = {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
        out: dict[int, dict[str, np.ndarray]] = {}
        for key, value in flat.items():
            name, step = key.rsplit("_at_", 1)
            out.setdefault(int(step), {})[name] = value
        return out

    def __call__(self, images01, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Scores float32 images (N, H, W, C) in [0, 1] at the last recorded step."""
        return self.search(images01, batch_size)[self.record_at[-1]]


def choose_learning_rate(generator, critic, normal_images01, learning_rates=(0.01, 0.03, 0.1, 0.3),
                         batch_size: int = 64, **kwargs) -> tuple[float, dict]:
    """The Adam step size of :class:`IterativeMapping` with the lowest mean final objective on
    **normal** hold-out images (AnoGAN's loss or izi_f, as ``objective`` says): the search
    that reconstructs normal images best. Test images and labels are never seen.

    Returns:
        The chosen rate and the mean objective per rate.
    """
    record = {}
    for lr in learning_rates:
        mapper = IterativeMapping(generator, critic, learning_rate=lr, **kwargs)
        out = mapper(normal_images01, batch_size)
        key = ANOGAN_SCORE if mapper.objective == "anogan" else sig.ANOMALY_SCORE
        record[f"{lr:g}"] = float(np.mean(out[key]))
    best = min(record, key=record.get)
    return float(best), record


def iterative_mapping(generator, critic, images01, steps: int = 500, learning_rate: float = 0.05,
                      kappa: float = 1.0, batch_size: int = 64, **kwargs) -> dict[str, np.ndarray]:
    """One-off :class:`IterativeMapping` (reuse an instance to avoid retracing)."""
    return IterativeMapping(generator, critic, steps, learning_rate, kappa, **kwargs)(images01, batch_size)


def nearest_neighbour_distance(train01, images01, k: int = 1, batch_size: int = 512) -> np.ndarray:
    """Root-mean-square pixel distance of each image to its ``k`` nearest normal training images
    (their mean for ``k > 1``): ``sqrt(mean((x - t)^2))``, images (N, H, W, C) in [0, 1].

    Exact (float64, every training image compared) and deterministic; ``batch_size`` only bounds
    memory (``batch_size x len(train01)`` distances at a time), not the result beyond rounding.
    """
    train = np.asarray(train01, np.float64)
    x = np.asarray(images01, np.float64)
    if train.ndim != 4 or x.ndim != 4 or train.shape[1:] != x.shape[1:]:
        raise ValueError(f"train01 and images01 must be (N, H, W, C) of one image shape, got {train.shape} "
                         f"and {x.shape}")
    if not 1 <= k <= len(train):
        raise ValueError(f"k must lie in [1, {len(train)}] (the number of training images), got {k}")
    train = train.reshape(len(train), -1)
    t2 = np.einsum("ij,ij->i", train, train)
    out = np.empty(len(x), np.float64)
    for s in data_lib.batches(len(x), batch_size):
        q = x[s].reshape(-1, train.shape[1])
        d2 = np.maximum(np.einsum("ij,ij->i", q, q)[:, None] - 2 * q @ train.T + t2[None], 0.0)
        nearest = np.partition(d2, k - 1, axis=1)[:, :k] if k < len(train) else d2
        out[s] = np.sqrt(nearest / train.shape[1]).mean(axis=1)
    return out

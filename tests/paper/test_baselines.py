"""The baselines: the convolutional autoencoder and AnoGAN's iterative latent search."""


import numpy as np
import pytest

from helpers import blobs
from tf_fanogan import signatures as sig


def test_autoencoder_has_the_f_anogan_trunk_and_learns(normal_images):
    import keras

    from tf_fanogan.paper.baselines import ConvAutoencoder
    from tf_fanogan.data.images import to_model_units
    from tf_fanogan.models.networks import Encoder, Generator

    keras.utils.set_random_seed(0)
    ae = ConvAutoencoder(16, 1, 8, 16)
    x = to_model_units(normal_images, 16, 1)
    ae(x[:1])
    expected = Encoder(16, 1, 8, 16).count_params() + Generator(16, 1, 8, 16).count_params()
    assert ae.count_params() == expected
    ae.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = ae.score(normal_images).mean()
    ae.fit(x, x, batch_size=8, epochs=3, verbose=0)
    after = ae.score(normal_images)
    assert after.mean() < before
    assert np.allclose(ae.score(normal_images[:5], batch_size=2), after[:5], rtol=1e-5, atol=1e-7)


def test_iterative_mapping_lowers_the_residual_and_is_batch_independent(trained_detector):
    from tf_fanogan.paper.baselines import IterativeMapping, iterative_mapping

    det = trained_detector
    x = det.prepare(blobs(6, seed=9))
    kw = dict(objective="izi_f", init="zero")
    start = iterative_mapping(det.generator, det.critic, x, steps=0, **kw)
    mapper = IterativeMapping(det.generator, det.critic, steps=40, **kw)
    searched = mapper(x, batch_size=6)
    assert searched[sig.ANOMALY_SCORE].mean() < start[sig.ANOMALY_SCORE].mean()
    # Deterministic: the same call gives bit-identical scores.
    np.testing.assert_array_equal(mapper(x, batch_size=6)[sig.ANOMALY_SCORE], searched[sig.ANOMALY_SCORE])
    # Each image's search ignores the rest of its batch: over 10 steps the scores of a batch of 6
    # and of batches of 4 and 2 agree to float precision (measured 4e-7 relative on CPU).
    short = IterativeMapping(det.generator, det.critic, steps=10, **kw)
    np.testing.assert_allclose(short(x, batch_size=4)[sig.ANOMALY_SCORE], short(x, batch_size=6)[sig.ANOMALY_SCORE],
                               rtol=1e-4, atol=1e-6)
    # Kernels round differently for different batch shapes (~1e-7) and Adam, which normalises each
    # coordinate's step, amplifies that on near-zero gradients: the spread measured 2e-5 relative
    # after 20 steps and 2e-3 after 40, so the longer search is checked to 1e-2.
    in_pairs = mapper(x, batch_size=4)  # batches of 4 and 2
    np.testing.assert_allclose(in_pairs[sig.ANOMALY_SCORE], searched[sig.ANOMALY_SCORE], rtol=1e-2)
    # Scores recorded at step 10 of a 40-step search are those of a 10-step search.
    both = IterativeMapping(det.generator, det.critic, steps=40, record_at=(10, 40), **kw).search(x, batch_size=6)
    np.testing.assert_allclose(both[10][sig.ANOMALY_SCORE], short(x, batch_size=6)[sig.ANOMALY_SCORE], rtol=1e-5)
    np.testing.assert_allclose(both[40][sig.ANOMALY_SCORE], searched[sig.ANOMALY_SCORE], rtol=1e-5)
    # steps=0 scores z = 0 with the one scoring function
    from tf_fanogan.scoring import forward as scoring
    import tensorflow as tf

    zero = lambda images, training=False: tf.zeros((tf.shape(images)[0], det.generator.input_shape[-1]))  # noqa: E731
    ref = scoring.score_batch(det.generator, det.critic, zero, scoring.to_model_units(x), det.config.encoder.kappa)
    np.testing.assert_allclose(start[sig.ANOMALY_SCORE], ref[sig.ANOMALY_SCORE].numpy(), rtol=1e-5)


def test_iterative_mapping_as_anogan_defines_it(trained_detector):
    """AnoGAN's objective (L1 residual, lambda = 0.1 feature matching) falls from a seeded prior
    start; the start is the prior's draw per image position; z stays on the prior's support;
    E(x) is a second start."""

    from tf_fanogan.models import latent
    from tf_fanogan.paper.baselines import ANOGAN_SCORE, IterativeMapping, choose_learning_rate

    det = trained_detector
    x = det.prepare(blobs(6, seed=9))
    mapper = IterativeMapping(det.generator, det.critic, steps=30, learning_rate=0.1, record_at=(0, 30), seed=3)
    assert (mapper.objective, mapper.init, mapper.lam) == ("anogan", "prior", 0.1)
    out = mapper.search(x, batch_size=6)
    assert out[30][ANOGAN_SCORE].mean() < out[0][ANOGAN_SCORE].mean()
    z0 = mapper.initial_z(6)
    np.testing.assert_array_equal(z0, latent.sample_numpy(np.random.default_rng(3), (6, 16), "normal"))
    np.testing.assert_allclose(out[0][sig.Z_DISTANCE], np.linalg.norm(z0, axis=1), rtol=1e-5)
    # AnoGAN's score at the start: (1 - 0.1) * sum|x - G(z0)| + 0.1 * sum|f(x) - f(G(z0))|
    xm = x * 2 - 1
    fake = det.generator(z0, training=False).numpy()
    fx, ff = det.critic(xm, training=False)[1].numpy(), det.critic(fake, training=False)[1].numpy()
    ref = 0.9 * np.abs(xm - fake).sum(axis=(1, 2, 3)) + 0.1 * np.abs(fx - ff).sum(axis=1)
    np.testing.assert_allclose(out[0][ANOGAN_SCORE], ref, rtol=1e-4)
    # Uniform prior: a large step still leaves z inside [-1, 1]^d.
    uni = IterativeMapping(det.generator, det.critic, steps=5, learning_rate=5.0, latent_prior="uniform")
    assert np.all(uni(x)[sig.Z_DISTANCE] <= np.sqrt(16) + 1e-5)
    # Normal prior: z is kept within the support radius.
    far = IterativeMapping(det.generator, det.critic, steps=5, learning_rate=50.0)
    assert np.all(far(x)[sig.Z_DISTANCE] <= latent.support_radius(16) + 1e-4)
    # E(x) start: step 0 scores exactly the encoder's z.
    enc = IterativeMapping(det.generator, det.critic, steps=0, init="encoder", encoder=det.encoder, objective="izi_f")
    np.testing.assert_allclose(enc(x)[sig.ANOMALY_SCORE], det.score(x)[sig.ANOMALY_SCORE], rtol=1e-5)
    with pytest.raises(ValueError, match="needs the encoder"):
        IterativeMapping(det.generator, det.critic, init="encoder")
    # The step size is chosen on normal images only, by the final objective.
    lr, record = choose_learning_rate(det.generator, det.critic, x, learning_rates=(0.001, 0.1), steps=10)
    assert lr == float(min(record, key=record.get)) and set(record) == {"0.001", "0.1"}


def test_fit_autoencoder_chooses_the_rate_on_validation_loss(normal_images):
    from tf_fanogan.paper.baselines import fit_autoencoder
    from tf_fanogan.config import ModelConfig
    from tf_fanogan.data.images import to_model_units

    x = to_model_units(normal_images, 16, 1)
    ae, record = fit_autoencoder(x[:60], x[60:], ModelConfig(16, 1, 8, 16), learning_rates=(1e-5, 1e-3),
                                 max_updates=60, patience=2, batch_size=8)
    vals = {k: v["val_mse"] for k, v in record["learning_rates"].items()}
    assert record["chosen_learning_rate"] == float(min(vals, key=vals.get))
    # The kept weights are the best epoch's: the AE's validation MSE is the recorded minimum.
    val = float(np.mean(np.square(x[60:] - ae(x[60:], training=False).numpy())))
    assert val == pytest.approx(min(vals.values()), rel=1e-4)


def test_nearest_neighbour_distance_is_the_brute_force_one():
    from tf_fanogan.paper.baselines import nearest_neighbour_distance

    rng = np.random.default_rng(0)
    train = rng.random((37, 6, 5, 2)).astype(np.float32)
    x = np.concatenate([rng.random((11, 6, 5, 2)), train[[3, 20]]]).astype(np.float32)
    brute = np.array([[np.sqrt(np.mean((a.astype(np.float64) - t) ** 2)) for t in train] for a in x])
    for k in (1, 3, 37):
        want = np.sort(brute, axis=1)[:, :k].mean(axis=1)
        for batch_size in (1, 4, 512):
            got = nearest_neighbour_distance(train, x, k=k, batch_size=batch_size)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # a training image is its own nearest neighbour; its distance is zero up to rounding
    assert np.all(nearest_neighbour_distance(train, x)[-2:] < 1e-6)
    # a far image is farther than every near one: an anomaly score, larger = more unusual
    assert nearest_neighbour_distance(train, np.ones((1, 6, 5, 2)))[0] > nearest_neighbour_distance(train, x).max()


@pytest.mark.parametrize("train_shape, x_shape, k, message", [
    ((4, 6, 6, 1), (2, 6, 5, 1), 1, r"one image shape, got \(4, 6, 6, 1\) and \(2, 6, 5, 1\)"),
    ((4, 36), (2, 36), 1, "must be \\(N, H, W, C\\)"),
    ((4, 6, 6, 1), (2, 6, 6, 1), 5, r"k must lie in \[1, 4\]"),
    ((4, 6, 6, 1), (2, 6, 6, 1), 0, r"k must lie in \[1, 4\]"),
])
def test_nearest_neighbour_distance_names_bad_input(train_shape, x_shape, k, message):
    from tf_fanogan.paper.baselines import nearest_neighbour_distance

    with pytest.raises(ValueError, match=message):
        nearest_neighbour_distance(np.zeros(train_shape), np.zeros(x_shape), k=k)

"""The quality sections from stored units: Fashion-MNIST's classes in one table, means over classes."""

from benchmarks.quality_report import sections

CONFIG = {"model": {"image_size": 32, "dim": 16, "latent_prior": "normal"},
          "gan": {"iterations": 1000, "batch_size": 16, "learning_rate": 2e-4},
          "encoder": {"iterations": 1000}}


def _meta(k):
    return {"description": f"Fashion-MNIST one-class, normal class {k} (c{k}); test = the whole set", "n_train": 5400,
            "n_holdout": 600, "n_test_items": 10000, "n_test_anomalous": 9000, "config": CONFIG, "commit": "a" * 40}


def _m(auroc):
    return {"auroc": auroc, "aupr": 0.5, "f1": 0.5}


def _units():
    u = {}
    for k, seeds in ((0, {0: (0.9, 0.8, 0.02), 1: (0.8, 0.9, 0.04)}), (1, {0: (0.6, 0.7, 0.06)})):
        u[f"fashion_mnist_c{k}/short/meta"] = _meta(k)
        for s, (izi_f, critic, fpr) in seeds.items():
            u[f"fashion_mnist_c{k}/short/seed{s}/izi_f"] = {
                "rows": {"izi_f": _m(izi_f), "critic-only": _m(critic)}, "ms_per_image": 1.0, "commit": "b" * 40,
                "test_normal_fpr": {"p_value <= 0.05": fpr}, "unit_wall_s": 1800.0}
    u["fashion_mnist_c1/short/seed0/ae"] = {"rows": {"AE": _m(0.5)}, "ms_per_image": 0.5, "unit_wall_s": 1800.0}
    return u


def test_fashion_mnist_classes_share_one_table_with_means_over_classes():
    out = sections(["fashion_mnist_c0", "fashion_mnist_c1", "fashion_mnist_c2"], "short", _units(),
                   ("izi_f", "izi", "ziz"), 0.05, "subset")
    assert list(out) == ["quality-fashion_mnist-short"]  # no section per class; class 2 has no units yet
    text = out["quality-fashion_mnist-short"]
    assert "| normal class | seeds | izi_f | critic-only | AE | FPR of p ≤ 0.05 on test normals |" in text
    assert "| 0 (c0) | 2 | 0.8500 ± 0.0707 | 0.8500 ± 0.0707 | — | 0.030 ± 0.014 |" in text
    assert "| 1 (c1) | 1 | 0.6000 | 0.7000 | 0.5000 | 0.060 |" in text
    # means over classes of each class's mean; critic-only wins (0.775 vs 0.725); AE has one class
    assert "| mean over 2 classes | | 0.7250 | **0.7750** | 0.5000 (1) | 0.045 |" in text
    assert "1000 generator updates" in text and "`bbbbbbbbbb`" in text and "Total unit wall time: 2.00 h." in text


def test_the_nearest_neighbour_reference_is_a_row_and_says_what_it_is():
    u = _units()
    knn = {"rows": {"pixel 1-NN (no training)": _m(0.95)}, "ms_per_image": 0.1, "n_train": 5400,
           "unit_wall_s": 5.0}
    u["fashion_mnist_c0/short/seed0/knn"] = knn
    u["elpv/short/meta"] = dict(_meta(0), description="ELPV")
    u["elpv/short/seed0/izi_f"] = {k: v for k, v in u["fashion_mnist_c0/short/seed0/izi_f"].items()
                                   if k != "test_normal_fpr"}
    u["elpv/short/seed0/knn"] = knn
    u["elpv/short/seed0/critic_knn"] = {"rows": {"izi_f, critic_nn score": _m(0.9)}, "ms_per_image": 0.3,
                                        "n_memory": 5400, "feature_dim": 64,
                                        "test_normal_fpr": {"p_value <= 0.05": 0.04}}
    out = sections(["elpv", "fashion_mnist_c0", "fashion_mnist_c1"], "short", u, ("izi_f",), 0.05, "subset")
    one_class, elpv = out["quality-fashion_mnist-short"], out["quality-elpv-short"]
    # a column like any method's, last; a best mean is bold only among columns that cover every class
    assert "| 0 (c0) | 2 | 0.8500 ± 0.0707 | 0.8500 ± 0.0707 | — | 0.9500 | 0.030 ± 0.014 |" in one_class
    assert "| mean over 2 classes | | 0.7250 | **0.7750** | 0.5000 (1) | 0.9500 (1) | 0.045 |" in one_class
    assert "| **pixel 1-NN (no training)** | 1 | 0.9500 | 0.5000 | 0.5000 | 0.100 |" in elpv
    assert "| izi_f, critic_nn score | 1 | 0.9000 | 0.5000 | 0.5000 | 0.300 |" in elpv
    assert "critic's features f(x) (64 values" in elpv and "nearest of 5400 normal training images' f" in elpv
    assert "FPR of `p_value <= 0.05` on the test normals: 0.040." in elpv and "critic's features" not in one_class
    # the critic_nn score is a scoring option a user can pick: marked best where it is highest
    u["elpv/short/seed0/critic_knn"]["rows"] = {"izi_f, critic_nn score": _m(0.99)}
    again = sections(["elpv"], "short", u, ("izi_f",), 0.05, "subset")["quality-elpv-short"]
    assert "| **izi_f, critic_nn score** | 1 | 0.9900 |" in again and "| pixel 1-NN (no training) |" in again
    # a diagnostic explains a score, it does not offer one: never marked best, even when highest
    u["elpv/short/seed0/critic_knn"]["rows"] = {"why it scores so (diagnostic)": _m(0.99)}
    again = sections(["elpv"], "short", u, ("izi_f",), 0.05, "subset")["quality-elpv-short"]
    assert "| why it scores so (diagnostic) | 1 | 0.9900 |" in again and "| **pixel 1-NN (no training)** |" in again
    for text in (one_class, elpv):
        assert "nearest of the 5400 normal training images" in text
    u["fashion_mnist_c1/short/seed0/knn"] = knn
    both = sections(["fashion_mnist_c0", "fashion_mnist_c1"], "short", u, ("izi_f",), 0.05, "s")
    assert "| mean over 2 classes | | 0.7250 | 0.7750 | 0.5000 (1) | **0.9500** | 0.045 |" in (
        both["quality-fashion_mnist-short"])


def test_speed_ratio_is_the_median_over_seeds_with_each_seed_shown():
    u = {"elpv/short/meta": dict(_meta(0), description="ELPV")}
    slow, fast = "iterative (anogan, from prior, 500 steps)", "subset"
    for seed, ms in enumerate((500.0, 600.0, 1100.0)):
        u[f"elpv/short/seed{seed}/iterative"] = {
            "rows": {slow: _m(0.6), fast: _m(0.7)}, "ms_per_image": {slow: ms, fast: 1.0}, "n_items": 256,
            "n_images": 256, "learning_rate": {"anogan/prior": {"chosen": 0.1, "mean_objective": {"0.1": 1.0}}}}
    text = sections(["elpv"], "short", u, ("izi_f",), 0.05, fast)["quality-elpv-short"]
    assert f"one forward pass is 600× faster per image than {slow}" in text and "per seed 500×, 600×, 1100×" in text


def test_encoder_budget_is_paired_by_seed():
    u = {"elpv/short/meta": dict(_meta(0), description="ELPV")}
    for seed, (izi, izi4, auc, auc4) in enumerate(((0.02, 0.01, 0.75, 0.73), (0.03, 0.02, 0.70, 0.71))):
        u[f"elpv/short/seed{seed}/izi_f"] = {"rows": {"izi_f": _m(auc)}, "ms_per_image": 1.0, "holdout_izi": izi,
                                            "updates": {"gan": 1000, "encoder": 1000}}
        u[f"elpv/short/seed{seed}/izi_f_x4"] = {"rows": {"izi_f, 4× encoder updates": _m(auc4)}, "ms_per_image": 1.0,
                                               "holdout_izi": izi4, "updates": {"gan": 1000, "encoder": 4000}}
    text = sections(["elpv"], "short", u, ("izi_f",), 0.05, "subset")["quality-elpv-short"]
    assert "| izi_f, 4× encoder updates | 2 | 0.7200 ± 0.0141 |" in text
    assert ("izi_f, 4× encoder updates (4× the izi_f unit's encoder updates, the same GAN), paired by seed over 2: "
            "held-out normal izi 0.0250 ± 0.0071 → 0.0150 ± 0.0071 (lower on 2 of 2), AUROC 0.7250 ± 0.0354 → "
            "0.7200 ± 0.0141 (higher on 1 of 2).") in text


def test_no_units_no_section():
    assert sections(["elpv", "fashion_mnist_c0"], "long", _units(), ("izi_f",), 0.05, "subset") == {}


def test_fpr_spread_note_matches_simulated_calibrations():
    """The report's ± for a test-normal FPR under exchangeability is what repeated calibrations give."""
    import re

    import numpy as np

    from benchmarks.quality_report import _spread_note
    from tf_fanogan.scoring.scorer import conformal_p_values

    n_hold, n_test, rng = 600, 1000, np.random.default_rng(0)
    fprs = [float(np.mean(conformal_p_values(rng.normal(size=n_test), np.sort(rng.normal(size=n_hold))) <= 0.05))
            for _ in range(400)]
    claimed = float(re.search(r"±(\d\.\d+)", _spread_note(n_hold, n_test, 0.05)).group(1))
    assert abs(np.std(fprs) - claimed) < 0.15 * claimed, (np.std(fprs), claimed)
    assert np.mean(fprs) <= 0.05 + 2 * claimed / np.sqrt(len(fprs))

"""Reproducing the paper: public data sets and their splits, the OCT B-scan pipeline, and the baselines
of its comparison table (AE, iterative AnoGAN mapping).
"""

"""Scoring: the one scoring function (``forward.score_batch``), the ``Scorer`` module shared by the
detector and the SavedModel export, calibration on normal hold-out images, native-resolution
scoring by tiles (``tiled``), and streaming scoring of large folders to CSV.
"""

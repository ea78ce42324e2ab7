"""Scoring: the one scoring function (``forward.score_batch``), the ``Scorer`` module shared by the
detector and the SavedModel export, and streaming scoring of large folders to CSV.
"""

"""Evaluation: NumPy metrics (image and pixel level, AUPRO, thresholds) and ``fanogan evaluate``.
"""

"""Images in: reading and validating files, folders and arrays, value ranges, colour and
small-image policies, resizing (``images``); tiles at native resolution (``tiles``); labelled
evaluation sets with defect masks (``labelled``).
"""

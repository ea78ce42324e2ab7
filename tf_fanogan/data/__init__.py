"""Reading and validating images: files, folders, arrays; resizing and value ranges.
"""

"""Plumbing shared by every part: atomic files and directories, progress lines.
"""

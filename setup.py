# Metadata lives in pyproject.toml; this shim keeps `python setup.py ...` tooling working.
from setuptools import setup

setup()

"""Long runs that measure tf-fanogan and write BENCHMARKS.md; run as ``python -m benchmarks.<name>``."""

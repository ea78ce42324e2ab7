"""The package's error types for detectors (data, config, export and serving errors live with their modules)."""


class DetectorError(RuntimeError):
    """A detector is used out of order, cannot train with its settings, or a detector or work
    directory is unusable."""

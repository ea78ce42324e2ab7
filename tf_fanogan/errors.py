"""The package's shared error types: detectors and configurations (data, export and serving
errors live with their modules)."""


class DetectorError(RuntimeError):
    """A detector is used out of order, cannot train with its settings, or a detector or work
    directory is unusable."""


class ConfigError(ValueError):
    """A configuration value or key is invalid."""

"""One exception family for bad input: the CLI prints its message as one line and exits with code 2."""


class SparsenetsError(Exception):
    """Bad input or a missing resource; the message says what was wrong and what to do."""


class DataNotFoundError(SparsenetsError, FileNotFoundError):
    """A dataset is neither in the cache nor in an installed package."""


class CheckpointError(SparsenetsError):
    """A checkpoint is unreadable, truncated or fails its checksum."""


class ConfigError(SparsenetsError, ValueError):
    """An unknown experiment, an unknown config key, or a value of the wrong type."""

"""The project's own error types: every failure a user can cause is one of these.

Each carries a one-line message that says what happened and what to do, so the CLI and the
app can show it as-is instead of a traceback.
"""

from __future__ import annotations


class LatentExplorerError(Exception):
    """Base class for errors a user can hit (bad input, bad file, missing data)."""


class ConfigError(LatentExplorerError, ValueError):
    """A configuration field is out of range; the message names the field and the allowed values."""


class DatasetError(LatentExplorerError):
    """A dataset is unknown, missing or malformed."""


class CheckpointError(LatentExplorerError):
    """A checkpoint file is wrong, truncated, foreign or from an unknown format version."""


class TrainingDiverged(LatentExplorerError):
    """The loss became NaN or infinite; the model holds the last good weights."""

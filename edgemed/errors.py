"""Errors a user can act on. The CLI prints one line for each and exits with code 2."""

from __future__ import annotations


class EdgemedError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""

    exit_code = 2


class DataError(EdgemedError):
    """A data set is missing, corrupt or inconsistent."""


class ModelError(EdgemedError):
    """Unknown model, wrong kwargs, or an input the model cannot take."""


class CheckpointError(EdgemedError):
    """A checkpoint that cannot be read or does not fit its architecture."""


class BundleError(EdgemedError):
    """A deployment bundle that is missing, tampered with or malformed."""


class ExportError(EdgemedError):
    """An export that failed (unsupported op, parity beyond tolerance)."""


class RuntimeUnavailable(EdgemedError):
    """A runtime, device or optional package that is not installed here."""


class TrainingDiverged(EdgemedError):
    """Loss became NaN or infinite."""


def missing_extra(package: str, extra: str) -> RuntimeUnavailable:
    """The standard message for an optional dependency that is not installed."""
    return RuntimeUnavailable(f'{package} is not installed: pip install "edgemed[{extra}]"')

"""Errors the kit raises for bad input (and for a full disk). Messages name the file, line or id at fault."""


class DataError(ValueError):
    """An input file (labels, ids, metadata, features) does not have the expected shape."""


class SubmissionError(ValueError):
    """A submission would be rejected by Kaggle (ids, columns or values wrong)."""


class DiskFull(DataError):
    """An output could not be written: the disk (or the quota) is full. Nothing half-written is left."""

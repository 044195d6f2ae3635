"""Errors the kit raises for bad input. Messages name the file, line or id at fault."""


class DataError(ValueError):
    """An input file (labels, ids, metadata, features) does not have the expected shape."""


class SubmissionError(ValueError):
    """A submission would be rejected by Kaggle (ids, columns or values wrong)."""

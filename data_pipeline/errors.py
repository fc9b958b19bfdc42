"""The one error type of the data pipeline: a bad file or a bad setting, said in one line."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data or data settings; the message names the file (or setting) and the problem.

    A subclass of ``ValueError`` so that the CLI reports it as a one-line error with exit code 2.
    """

"""Exceptions that training raises so that callers (studies) can react precisely."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the configuration cannot train."""


class DeviceOutOfMemory(RuntimeError):
    """The accelerator (or host) ran out of memory; memory was released before raising."""


class UnknownParameterError(ValueError):
    """A model was given a parameter it does not take."""


class NoEmbeddingError(ValueError):
    """``embed`` was called on a model that has no embedding (``has_embedding`` is False)."""

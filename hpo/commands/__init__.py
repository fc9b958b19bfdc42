"""Moved: the commands live in :mod:`hpo.cli` (``hpo COMMAND`` or ``python -m hpo.cli COMMAND``)."""

"""Optuna studies for tissue-of-origin classification: study files, workers, storage, export."""

__version__ = "0.1.0"

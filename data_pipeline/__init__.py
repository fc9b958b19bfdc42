"""Load DepMap (or the embedded synthetic default), filter, normalise, split, cache."""

from data_pipeline.dataset import SPLITS, PreparedDataset

__all__ = ["SPLITS", "PreparedDataset"]

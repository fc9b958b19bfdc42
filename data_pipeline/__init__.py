"""Load DepMap (or the embedded synthetic default), filter, normalise, split, cache."""

from data_pipeline.cache import load_prepared
from data_pipeline.config import DataConfig
from data_pipeline.dataset import SPLITS, PreparedDataset
from data_pipeline.errors import DataError
from data_pipeline.prepare import prepare_dataset

__all__ = ["SPLITS", "DataConfig", "DataError", "PreparedDataset", "load_prepared", "prepare_dataset"]

"""DataConfig: the [data] table of study files, with errors that name the key and the file."""

from __future__ import annotations

import pytest

from data_pipeline import DataConfig, DataError


def test_defaults_and_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPO_HOME", "/srv/hpo")
    config = DataConfig()
    assert config.source == "synthetic" and config.preset == "full"
    assert config.label_column == "OncotreeLineage"
    assert config.cache_dir == "/srv/hpo/cache"
    assert DataConfig.from_mapping(config.to_dict()) == config


def test_from_mapping_accepts_ints_for_floats_and_infers_depmap() -> None:
    config = DataConfig.from_mapping(
        {"expression_path": "e.csv", "model_path": "m.csv", "min_gene_variance": 1, "top_k_genes": 500}
    )
    assert config.source == "depmap"
    assert config.min_gene_variance == 1.0 and isinstance(config.min_gene_variance, float)


@pytest.mark.parametrize(
    ("mapping", "fragment"),
    [
        ({"prest": "tiny"}, "unknown key 'prest'"),
        ({"top_k_genes": "many"}, "top_k_genes='many' has type str; expected int or none"),
        ({"val_fraction": True}, "val_fraction=True has type bool"),
        ({"preset": "huge"}, "preset='huge'"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction + test_fraction"),
        ({"min_samples_per_tissue": 1}, "min_samples_per_tissue=1"),
        ({"source": "depmap"}, "needs both expression_path and model_path"),
        ({"n_folds": 1}, "n_folds=1"),
    ],
)
def test_bad_settings_name_the_file_and_key(mapping: dict, fragment: str) -> None:
    with pytest.raises(DataError) as caught:
        DataConfig.from_mapping(mapping, where="studies/demo.toml")
    message = str(caught.value)
    assert message.startswith("studies/demo.toml: [data] ")
    assert fragment in message
    assert "\n" not in message


def test_config_is_hashable_and_frozen() -> None:
    config = DataConfig(preset="tiny")
    assert hash(config) == hash(DataConfig(preset="tiny"))
    with pytest.raises(AttributeError):
        config.preset = "full"  # type: ignore[misc]

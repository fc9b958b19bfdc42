"""Reading DepMap release files: both layouts, gzip, unlabelled rows, and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_pipeline import DataConfig, DataError, prepare_dataset
from data_pipeline.loader import load_labelled, read_expression
from data_pipeline.synthetic import generate_tables, spec_for, write_tables
from tests.support import data_samples as samples


@pytest.mark.parametrize("layout", ["classic", "25q3"])
@pytest.mark.parametrize("compress", [False, True])
def test_hand_written_release_files_load(tmp_path: Path, layout: str, compress: bool) -> None:
    expression, model = samples.write_pair(tmp_path, layout=layout, compress=compress)
    data = load_labelled(expression, model, "OncotreeLineage")
    assert data.layout == layout
    assert data.gene_names == samples.GENES
    # ACH-000013 has an empty lineage, ACH-000099 has no Model.csv row: both dropped and counted.
    assert data.model_ids == [f"ACH-{i:06d}" for i in range(1, 13)]
    assert data.n_unlabeled == 2 and data.n_without_metadata == 1
    assert data.labels == ["Lung"] * 6 + ["Skin"] * 6
    assert data.values.dtype == np.float32
    # The default profile is kept, not the 25Q3 non-default one (all 99s).
    np.testing.assert_allclose(data.values[0], samples.EXPRESSION_ROWS[0][1], rtol=1e-6)
    assert data.metadata.loc["ACH-000007", "OncotreePrimaryDisease"] == "Melanoma"
    assert data.metadata.loc["ACH-000001", "Age"] == "51"


def test_unlabelled_rows_are_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    expression, model = samples.write_pair(tmp_path)
    with caplog.at_level("INFO", logger="data_pipeline"):
        load_labelled(expression, model, "OncotreeLineage")
    assert "dropped 2 unlabelled sample(s)" in caplog.text


@pytest.mark.parametrize("layout", ["classic", "25q3"])
def test_generated_files_round_trip(tmp_path: Path, layout: str) -> None:
    spec = spec_for("tiny", seed=3, layout=layout)
    tables = generate_tables(spec)
    expression_path, model_path = write_tables(tables, tmp_path, layout)
    header = expression_path.read_text().splitlines()[0]
    if layout == "classic":
        assert header.startswith(",GENE1 (")
    else:
        assert header.startswith("SequencingID,ModelConditionID,ModelID,IsDefaultEntryForMC,IsDefaultEntryForModel,GENE1 (")
    matrix = read_expression(expression_path)
    frame = tables.expression
    if layout == "25q3":
        frame = frame[frame["IsDefaultEntryForModel"] == "Yes"]
        ids = frame["ModelID"].tolist()
    else:
        ids = frame[""].tolist()
    genes = [c for c in frame.columns if c.startswith("GENE")]
    assert matrix.model_ids == ids
    assert matrix.gene_names == genes
    np.testing.assert_array_equal(matrix.values, frame[genes].to_numpy(dtype=np.float32))

    data = load_labelled(expression_path, model_path, "OncotreeLineage")
    models = tables.models.set_index("ModelID")
    unlabelled = [m for m in ids if models.loc[m, "OncotreeLineage"] == ""]
    assert len(unlabelled) == round(0.02 * spec.n_samples) > 0
    assert data.n_unlabeled == len(unlabelled)
    assert len(data.model_ids) == spec.n_samples
    assert not set(unlabelled) & set(data.model_ids)


def test_pre_22q4_sample_info_file_loads(tmp_path: Path) -> None:
    """CCLE_expression.csv + sample_info.csv (DepMap_ID, lineage, primary_disease, age, sex)."""
    expression = samples.write(tmp_path / "CCLE_expression.csv", samples.classic_expression_text())
    rows = ["DepMap_ID,cell_line_name,sex,primary_disease,Subtype,age,lineage"]
    rows += [f"ACH-{i:06d},L{i},Male,Lung Cancer,NSCLC,{40 + i},lung" for i in range(1, 7)]
    rows += [f"ACH-{i:06d},L{i},Female,Skin Cancer,Melanoma,,skin" for i in range(7, 14)]
    info = samples.write(tmp_path / "sample_info.csv", "\n".join(rows) + "\n")
    data = load_labelled(expression, info, "lineage")
    assert data.labels == ["lung"] * 6 + ["skin"] * 7
    assert data.metadata.loc["ACH-000002", "OncotreePrimaryDisease"] == "Lung Cancer"
    assert data.metadata.loc["ACH-000002", "Age"] == "42"
    assert data.metadata.loc["ACH-000008", "Sex"] == "Female"


def test_label_column_is_configurable(tmp_path: Path) -> None:
    expression, model = samples.write_pair(tmp_path)
    data = load_labelled(expression, model, "OncotreeCode")
    assert sorted(set(data.labels)) == ["LUAD", "SKCM"]


# --- bad input: one line naming the file and the problem, and nothing cached ---------------------------

def _bad_case(tmp_path: Path, case: str) -> tuple[DataConfig, str, str]:
    """(config, file named in the error, fragment of the problem) for one kind of bad input."""
    expression, model = samples.write_pair(tmp_path / "files")
    label = "OncotreeLineage"
    if case == "missing file":
        expression = tmp_path / "nope.csv"
        return _config(tmp_path, expression, model, label), str(expression), "not found"
    if case == "directory instead of file":
        expression = tmp_path / "a-directory.csv"
        expression.mkdir()
        return _config(tmp_path, expression, model, label), str(expression), "not a file"
    if case == "binary file":
        expression.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
        return _config(tmp_path, expression, model, label), str(expression), "not CSV"
    if case == "not comma separated":
        expression.write_text("just some text\nwith lines\n")
        return _config(tmp_path, expression, model, label), str(expression), "not an expression matrix"
    if case == "no ID overlap":
        rows = [(m.replace("ACH-", "XYZ-"), v) for m, v in samples.EXPRESSION_ROWS]
        expression.write_text(samples.classic_expression_text(rows))
        return _config(tmp_path, expression, model, label), str(expression), "no ModelID in common"
    if case == "duplicate expression ID":
        rows = samples.EXPRESSION_ROWS + [samples.EXPRESSION_ROWS[2]]
        expression.write_text(samples.classic_expression_text(rows))
        return _config(tmp_path, expression, model, label), str(expression), "duplicate ModelID 'ACH-000003'"
    if case == "duplicate metadata ID":
        model.write_text(samples.model_text(samples.MODEL_ROWS + [samples.MODEL_ROWS[0]]))
        return _config(tmp_path, expression, model, label), str(model), "duplicate ModelID 'ACH-000001'"
    if case == "non-numeric value":
        expression.write_text(samples.classic_expression_text().replace("7.112", "high"))
        return _config(tmp_path, expression, model, label), str(expression), "non-numeric"
    if case == "missing value":
        expression.write_text(samples.classic_expression_text().replace(",7.112,", ",,"))
        return _config(tmp_path, expression, model, label), str(expression), "missing expression value"
    if case == "ragged rows":
        expression.write_text(samples.classic_expression_text() + "ACH-000777,1,2\n")
        return _config(tmp_path, expression, model, label), str(expression), "not a valid CSV"
    if case == "unknown label column":
        return _config(tmp_path, expression, model, "Lineage"), str(model), "label column 'Lineage' not found"
    if case == "single tissue":
        return _config(tmp_path, expression, model, "Constant"), str(model), "at least two are needed"
    if case in ("infinite value", "-infinite value", "beyond float32"):
        text = {"infinite value": "inf", "-infinite value": "-inf", "beyond float32": "1e39"}[case]
        expression.write_text(samples.classic_expression_text().replace("7.112", text).replace("5.102", text))
        return (_config(tmp_path, expression, model, label), str(expression),
                "2 infinite expression value(s) (inf, or beyond float32's range), e.g. "
                f"{'-' if text == '-inf' else ''}inf at ModelID 'ACH-000001', gene 'DPM1 (8813)'")
    if case == "negative value, log2 forced":
        expression.write_text(samples.classic_expression_text().replace("6.901", "-0.25"))
        return (_config(tmp_path, expression, model, label, log_transform="yes"), str(expression),
                "1 negative expression value(s), e.g. -0.25 at ModelID 'ACH-000002', gene 'DPM1 (8813)'; "
                "log2(x+1) needs values >= 0 (log_transform='yes')")
    if case == "negative value, log2 chosen by auto":
        text = samples.classic_expression_text().replace("6.901", "-0.25").replace("7.112", "812.5")
        expression.write_text(text)
        return (_config(tmp_path, expression, model, label), str(expression),
                "log_transform='auto' applies it because the maximum 812.5 > 50); if the values are already "
                "log-scaled, set log_transform = \"no\" (--log-transform no)")
    if case == "metadata header only":
        model.write_text(samples.MODEL_HEADER + "\n")
        return _config(tmp_path, expression, model, label), str(model), "model metadata file has a header but no rows"
    if case == "too few samples per tissue":
        config = _config(tmp_path, expression, model, label).replace(min_samples_per_tissue=7)
        return (config, str(model), "leaves 0 tissue(s) with at least 7 samples; at least two are needed to classify; "
                "min_samples_per_tissue = 6 (--min-samples-per-tissue 6, study file [data] min_samples_per_tissue) "
                "would keep 2")
    if case == "empty gene header":
        genes = list(samples.GENES)
        genes[1] = " "
        expression.write_text(samples.classic_expression_text(genes=genes))
        return (_config(tmp_path, expression, model, label), str(expression),
                f"empty gene column header at column 3 of {len(genes) + 1}; every gene column needs a name")
    if case == "metadata without ModelID":
        model.write_text(samples.model_text().replace("ModelID,", "ID,", 1))
        return _config(tmp_path, expression, model, label), str(model), "no 'ModelID' column"
    raise AssertionError(case)


def _config(tmp_path: Path, expression: Path, model: Path, label: str, log_transform: str = "auto") -> DataConfig:
    return DataConfig(
        source="depmap", expression_path=str(expression), model_path=str(model), label_column=label,
        log_transform=log_transform, min_samples_per_tissue=3, val_fraction=0.25, test_fraction=0.25, cache_dir=str(tmp_path / "cache"),
    )


BAD_CASES = [
    "missing file", "directory instead of file", "binary file", "not comma separated", "no ID overlap",
    "duplicate expression ID", "duplicate metadata ID", "non-numeric value", "missing value", "ragged rows",
    "unknown label column", "single tissue", "metadata without ModelID", "infinite value", "-infinite value",
    "beyond float32", "negative value, log2 forced", "negative value, log2 chosen by auto", "metadata header only",
    "too few samples per tissue", "empty gene header",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_stops_with_one_clear_line(tmp_path: Path, case: str) -> None:
    config, named_file, problem = _bad_case(tmp_path, case)
    with pytest.raises(DataError) as caught:
        prepare_dataset(config)
    message = str(caught.value)
    assert "\n" not in message
    assert named_file in message, message
    assert problem in message, message
    prepared = Path(config.cache_dir) / "prepared"
    assert not prepared.exists() or not [p for p in prepared.iterdir() if not p.name.startswith(".")]


def test_hand_written_files_prepare_end_to_end(tmp_path: Path) -> None:
    expression, model = samples.write_pair(tmp_path / "files", layout="25q3", compress=True)
    dataset = prepare_dataset(_config(tmp_path, expression, model, "OncotreeLineage"))
    assert dataset.tissues == ["Lung", "Skin"]
    assert sum(len(ids) for ids in dataset.sample_ids.values()) == 12
    assert dataset.provenance["layout"] == "25q3"
    assert dataset.sample_info["test"]["Sex"]
    for split in ("train", "val", "test"):
        assert set(np.asarray(dataset.split(split)[1])) == {0, 1}


@pytest.mark.parametrize(("mode", "level"), [("auto", "WARNING"), ("no", "INFO")])
def test_negative_values_on_a_log_scale_are_kept_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, level: str
) -> None:
    """z-scores or log2(TPM) may be negative: without log2 they are z-scored as they are, never clipped."""
    expression, model = samples.write_pair(tmp_path / "files")
    expression.write_text(samples.classic_expression_text().replace("6.901", "-3.5"))
    with caplog.at_level("INFO", logger="data_pipeline"):
        dataset = prepare_dataset(_config(tmp_path, expression, model, "OncotreeLineage", log_transform=mode))
    notes = [r for r in caplog.records if "negative expression value" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelname == level
    assert notes[0].getMessage() == (
        f"{expression}: 1 negative expression value(s), e.g. -3.5 at ModelID 'ACH-000002', gene 'DPM1 (8813)': "
        "taken as already log-scaled (no log2 applied); z-scored as they are"
    )
    assert dataset.provenance["log_applied"] is False
    split = next(s for s in ("train", "val", "test") if "ACH-000002" in dataset.sample_ids[s])
    row = dataset.sample_ids[split].index("ACH-000002")
    gene = dataset.gene_names.index("DPM1 (8813)")
    X = np.asarray(getattr(dataset, f"X_{split}"))
    raw = X[row, gene] * dataset.feature_std[gene] + dataset.feature_mean[gene]
    assert raw == pytest.approx(-3.5, abs=1e-4)  # the value itself, not clipped to 0

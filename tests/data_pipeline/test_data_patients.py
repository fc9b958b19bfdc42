"""A patient's models (``PatientID``) stay in one split and one CV fold; the summary counts them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_pipeline import DataConfig, prepare_dataset, synthetic
from data_pipeline.dataset import SPLITS
from data_pipeline.summary import patient_counts, patient_line
from models.fidelity import split_groups, stratified_folds


@pytest.fixture(scope="module")
def cohort_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small cohort (70 samples, 6 tissues) where a fifth of the lines are replicates of another's patient."""
    spec = dataclasses.replace(
        synthetic.spec_for("tiny", n_samples=70, n_tissues=6, n_genes=120), replicate_share=0.2, imbalance=0.5
    )
    return synthetic.generate_files(spec, tmp_path_factory.mktemp("cohort"))


def test_the_generator_makes_replicate_lines_that_share_a_patient_and_correlate(cohort_files) -> None:
    expression_path, model_path = cohort_files
    models = pd.read_csv(model_path).set_index("ModelID")
    expression = pd.read_csv(expression_path, index_col=0)
    labelled = models.loc[expression.index]
    shared = labelled.groupby("PatientID").filter(lambda group: len(group) > 1)
    assert shared["PatientID"].nunique() >= 5
    assert (shared.groupby("PatientID")["OncotreeLineage"].nunique() == 1).all()  # one tissue per patient
    z = (expression - expression.mean()) / (expression.std() + 1e-9)
    twins = [group.index[:2] for _, group in shared.groupby("PatientID")]
    r_twins = np.mean([np.corrcoef(z.loc[a], z.loc[b])[0, 1] for a, b in twins])
    strangers = labelled.drop_duplicates("PatientID").index
    r_strangers = np.mean([np.corrcoef(z.loc[a], z.loc[b])[0, 1] for a, b in zip(strangers[:10], strangers[10:20])])
    assert r_twins > 0.6 > r_strangers + 0.4


@pytest.mark.parametrize("split_seed", [0, 1, 2, 3])
def test_no_patient_spans_two_splits_or_two_folds(cohort_files, tmp_path, split_seed: int) -> None:
    expression_path, model_path = cohort_files
    config = DataConfig(
        source="depmap", expression_path=str(expression_path), model_path=str(model_path),
        cache_dir=str(tmp_path / "cache"), min_samples_per_tissue=3, split_seed=split_seed, n_folds=3,
    )
    data = prepare_dataset(config)
    patients = {s: data.sample_info[s]["PatientID"] for s in SPLITS}
    seen: dict[str, str] = {}
    for split in SPLITS:
        for patient in patients[split]:
            assert seen.setdefault(patient, split) == split, f"patient {patient} in {seen[patient]} and {split}"
    assert Counter(p for s in SPLITS for p in patients[s]).most_common(1)[0][1] > 1  # there were twins to keep together
    # every tissue keeps training rows, and the splits stay near their fractions
    assert set(np.unique(data.y_train)) == set(range(data.n_classes))
    assert 0.05 < len(data.y_test) / 70 < 0.3 and 0.05 < len(data.y_val) / 70 < 0.3
    # the data set's fold assignment and the models' own folds keep a patient in one fold
    train_patients = np.array(patients["train"], dtype=object)
    for patient in set(train_patients):
        assert len(set(data.folds[train_patients == patient])) == 1
    groups = split_groups(data.sample_info, "train")
    assert groups is not None
    for _, held in stratified_folds(np.asarray(data.y_train), 4, None, groups):
        held_patients = set(train_patients[held])
        others = set(np.delete(train_patients, held))
        assert not held_patients & others
    # a retrain's folds over train+val group the same way
    assert len(split_groups(data.sample_info, "train+val")) == len(data.y_train) + len(data.y_val)

    patients_total, several, _ = patient_counts(data)
    assert several >= 5 and patients_total < 70
    assert f"{several} with several models" in patient_line(data)


def test_a_cohort_with_one_model_per_patient_splits_as_before(tiny_dataset) -> None:
    assert split_groups(tiny_dataset.sample_info, "train") is None
    assert patient_line(tiny_dataset).endswith("(one model each)")

"""A seeded DepMap-like data set, written in exactly the DepMap release file layouts.

The generator writes an expression matrix (log2(TPM+1) values, ``SYMBOL (ENTREZID)`` gene
columns) and a ``Model.csv`` with the DepMap metadata columns, so that the synthetic default
goes through the very loader that reads real releases.

Structure of the values (per gene ``g``, sample ``s``)::

    level = base[g] + identity[s] * tissue_program[tissue(s), g] + disease_program[disease(s), g]
            + shared_factors[s] @ loadings[g] + cell_states[s] @ state_loadings[g]
            + sub_lineage[s] * sub_lineage_program[tissue(s), g] + depth[s] + noise_sd[g] * N(0, 1)

* housekeeping genes: high base, tiny noise (low variance, removed by the variance filter);
* rarely expressed genes: exactly zero outside a (tissue-dependent) fraction of samples, which
  gives the ~17% sparsity of DepMap, concentrated in few genes;
* tissue programs scaled by a per-sample identity strength (cell lines drift away from their
  tissue), primary-disease sub-programs and shared programs (proliferation, immune, EMT, ...)
  whose level depends on the tissue;
* strong, tissue-independent cell-state programs (differentiation, culture stress) on the lineage
  genes: they dominate the distances between samples, so nearest neighbours and the default RBF
  SVC do poorly (~0.2 and ~0.5 accuracy on the full preset), while a linear model, which can look
  past their few directions, reaches ~0.95 (most lines keep their lineage's program, as ~94% of
  real cancer cell lines do);
* sub-lineages (``full``: half of the tissues): two opposite programs within a tissue, one side
  switched on, the other silenced, so that the tissue is two clusters on either side of the
  others. A linear model has one direction per tissue and cannot use them; a tuned MLP can, and
  beats it; an MLP with the registry defaults lags. Figures: benchmarks/calibration.py,
  benchmarks/RESULTS.md.

The same :class:`SyntheticSpec` always gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data_pipeline.cache import file_lock, hash_file
from data_pipeline.errors import DataError

if TYPE_CHECKING:  # pandas loads only to generate the files: a cache hit reads just the spec
    import pandas as pd

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3
"""Bump when the generated values change, so that caches built from older files are not reused."""

CLASSIC_EXPRESSION_FILE = "OmicsExpressionProteinCodingGenesTPMLogp1.csv"
Q3_2025_EXPRESSION_FILE = "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv"
MODEL_FILE = "Model.csv"

# DepMap OncotreeLineage values, roughly from most to least represented in recent releases.
TISSUES = (
    "Lung", "Lymphoid", "CNS/Brain", "Skin", "Esophagus/Stomach", "Breast", "Bowel",
    "Head and Neck", "Myeloid", "Ovary/Fallopian Tube", "Bone", "Pancreas", "Kidney",
    "Peripheral Nervous System", "Soft Tissue", "Uterus", "Biliary Tract",
    "Bladder/Urinary Tract", "Liver", "Pleura", "Thyroid", "Cervix", "Prostate", "Eye",
    "Fibroblast", "Ampulla of Vater", "Vulva/Vagina", "Testis", "Adrenal Gland", "Muscle",
    "Embryonal", "Other", "Normal", "Salivary Gland", "Thymus", "Nasopharynx", "Gallbladder",
    "Small Intestine", "Hair",
)

PRIMARY_DISEASES = {
    "Lung": ("Non-Small Cell Lung Cancer", "Lung Neuroendocrine Tumor", "Small Cell Lung Cancer"),
    "Lymphoid": (
        "Mature B-Cell Neoplasms", "B-Lymphoblastic Leukemia/Lymphoma",
        "Mature T and NK Neoplasms", "Plasma Cell Myeloma",
    ),
    "CNS/Brain": ("Diffuse Glioma", "Embryonal Tumor", "Meningioma"),
    "Skin": ("Melanoma", "Cutaneous Squamous Cell Carcinoma"),
    "Esophagus/Stomach": ("Esophagogastric Adenocarcinoma", "Esophageal Squamous Cell Carcinoma"),
    "Breast": ("Invasive Breast Carcinoma", "Breast Ductal Carcinoma In Situ"),
    "Bowel": ("Colorectal Adenocarcinoma", "Small Bowel Cancer"),
    "Head and Neck": ("Head and Neck Squamous Cell Carcinoma", "Salivary Carcinoma"),
    "Myeloid": ("Acute Myeloid Leukemia", "Myeloproliferative Neoplasms"),
    "Ovary/Fallopian Tube": ("Ovarian Epithelial Tumor", "Ovarian Germ Cell Tumor"),
    "Bone": ("Ewing Sarcoma", "Osteosarcoma", "Chondrosarcoma"),
    "Pancreas": ("Pancreatic Adenocarcinoma", "Pancreatic Neuroendocrine Tumor"),
    "Kidney": ("Renal Cell Carcinoma", "Rhabdoid Cancer"),
    "Peripheral Nervous System": ("Neuroblastoma",),
    "Soft Tissue": ("Rhabdomyosarcoma", "Synovial Sarcoma", "Liposarcoma"),
    "Uterus": ("Endometrial Carcinoma", "Uterine Sarcoma"),
}

FEMALE_ONLY = {"Breast", "Ovary/Fallopian Tube", "Uterus", "Cervix", "Vulva/Vagina"}
MALE_ONLY = {"Prostate", "Testis"}
YOUNG = {"Lymphoid", "Bone", "Peripheral Nervous System", "Embryonal", "Soft Tissue", "Eye"}


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and character of a synthetic data set; the seed fixes every value."""

    n_samples: int
    """Labelled samples (unlabelled ones come on top, for the loader to drop)."""
    n_genes: int
    n_tissues: int
    signal: float = 1.0
    """Scale of the tissue programs relative to the noise."""
    imbalance: float = 1.4
    """Exponent of the rank-based tissue size weights (0 = balanced)."""
    unlabeled_fraction: float = 0.02
    program_fraction: float = 0.015
    """Share of the genes in each tissue's program."""
    cell_states: float = 0.5
    """Scale of the tissue-independent cell-state programs on lineage genes (0 = none)."""
    sub_lineage_share: float = 0.0
    """Share of the tissues made of two sub-lineages with opposite programs (0 = none)."""
    sub_lineage_scale: float = 3.0
    """Scale of a sub-lineage program relative to a tissue program."""
    replicate_share: float = 0.0
    """Share of the labelled samples that are replicate lines of another sample's patient: same tissue,
    disease and ``PatientID``, expression correlated with their twin's (0 = every patient has one model)."""
    seed: int = 0
    layout: str = "classic"

    def key(self) -> str:
        """Hash of the spec and the generator version: names the generated files' folder."""
        fields = asdict(self)
        if not fields["replicate_share"]:  # the specs made before replicates keep their files
            del fields["replicate_share"]
        payload = json.dumps({"generator": GENERATOR_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


SYNTHETIC_PRESETS: dict[str, SyntheticSpec] = {
    "tiny": SyntheticSpec(n_samples=180, n_genes=400, n_tissues=6, signal=2.2, imbalance=0.6),
    "small": SyntheticSpec(n_samples=500, n_genes=3000, n_tissues=16, signal=1.0, imbalance=1.0),
    "full": SyntheticSpec(
        n_samples=1402, n_genes=18292, n_tissues=39, signal=1.6, imbalance=1.4, cell_states=0.65,
        sub_lineage_share=0.5, sub_lineage_scale=3.0,
    ),
}


def spec_for(
    preset: str = "full",
    *,
    seed: int = 0,
    layout: str = "classic",
    n_samples: int | None = None,
    n_genes: int | None = None,
    n_tissues: int | None = None,
) -> SyntheticSpec:
    """The preset's spec with the seed, layout and any size overrides applied."""
    if preset not in SYNTHETIC_PRESETS:
        raise DataError(f"unknown synthetic preset {preset!r}; expected one of {tuple(SYNTHETIC_PRESETS)}")
    spec = replace(SYNTHETIC_PRESETS[preset], seed=seed, layout=layout)
    if n_samples is not None:
        spec = replace(spec, n_samples=n_samples)
    if n_genes is not None:
        spec = replace(spec, n_genes=n_genes)
    if n_tissues is not None:
        spec = replace(spec, n_tissues=n_tissues)
    if not 2 <= spec.n_tissues <= len(TISSUES):
        raise DataError(f"synthetic n_tissues={spec.n_tissues}; expected 2..{len(TISSUES)}")
    if spec.n_samples < 3 * spec.n_tissues:
        raise DataError(
            f"synthetic n_samples={spec.n_samples} is too few for {spec.n_tissues} tissues "
            f"(need at least {3 * spec.n_tissues})"
        )
    if spec.n_genes < 20:
        raise DataError(f"synthetic n_genes={spec.n_genes}; expected at least 20")
    if spec.layout not in ("classic", "25q3"):
        raise DataError(f"synthetic layout={spec.layout!r}; expected 'classic' or '25q3'")
    return spec


@dataclass(frozen=True)
class SyntheticTables:
    """Generated data in memory: expression (rows in file order) and the Model.csv table."""

    expression: pd.DataFrame
    """Leading ID columns (layout-dependent) then one float32 column per gene."""
    models: pd.DataFrame


def tissue_counts(spec: SyntheticSpec) -> np.ndarray:
    """Labelled samples per tissue: rank-based DepMap-like imbalance, at least 3 each, summing to n."""
    ranks = np.arange(1, spec.n_tissues + 1, dtype=float)
    weights = (ranks + 1.5) ** -spec.imbalance  # full: ~270, ~170, ~120, ... and 7 tissues under 10
    minimum = min(3, spec.n_samples // spec.n_tissues)
    spare = spec.n_samples - minimum * spec.n_tissues
    raw = weights / weights.sum() * spare
    counts = np.floor(raw).astype(int)
    remainder = spare - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:remainder]] += 1
    return counts + minimum


def generate_tables(spec: SyntheticSpec) -> SyntheticTables:
    """Make the expression matrix and metadata for ``spec`` (deterministic in ``spec``)."""
    rng = np.random.default_rng(spec.seed)
    n_genes, n_tissues = spec.n_genes, spec.n_tissues
    tissues = TISSUES[:n_tissues]

    # Samples: labels with DepMap-like imbalance, then a few unlabelled ones.
    counts = tissue_counts(spec)
    labels = rng.permutation(np.repeat(np.arange(n_tissues), counts))
    n_unlabeled = int(round(spec.unlabeled_fraction * spec.n_samples))
    hidden_labels = rng.integers(0, n_tissues, size=n_unlabeled)  # their true tissue, not written
    true_tissue = np.concatenate([labels, hidden_labels])
    n_total = true_tissue.size

    # Primary diseases: 1-4 per tissue, unevenly used.
    diseases: list[str] = []
    disease_of_tissue: list[np.ndarray] = []
    for name in tissues:
        names = PRIMARY_DISEASES.get(name, (f"{name} Cancer",))
        start = len(diseases)
        diseases.extend(names)
        disease_of_tissue.append(np.arange(start, start + len(names)))
    sample_disease = np.empty(n_total, dtype=np.int64)
    for t in range(n_tissues):
        members = np.flatnonzero(true_tissue == t)
        options = disease_of_tissue[t]
        weights = rng.dirichlet(np.full(options.size, 2.0))
        sample_disease[members] = rng.choice(options, size=members.size, p=weights)

    # Genes: housekeeping (low variance), rarely expressed (mostly zero), regular.
    kind = rng.choice(3, size=n_genes, p=[0.08, 0.20, 0.72])  # 0 housekeeping, 1 rare, 2 regular
    housekeeping, rare, regular = (kind == 0), (kind == 1), (kind == 2)
    base = np.where(
        housekeeping,
        rng.normal(8.0, 1.2, n_genes),
        np.where(rare, 1.0 + rng.gamma(2.0, 0.8, n_genes), 0.8 + rng.gamma(2.0, 1.1, n_genes)),
    ).astype(np.float32)
    noise_sd = np.where(
        housekeeping, rng.uniform(0.04, 0.15, n_genes), rng.uniform(0.45, 1.0, n_genes)
    ).astype(np.float32)

    # Tissue programs on a few percent of the regular genes each; disease sub-programs.
    regular_idx = np.flatnonzero(regular)
    program_size = max(6, int(spec.program_fraction * n_genes))
    tissue_program = np.zeros((n_tissues, n_genes), dtype=np.float32)
    for t in range(n_tissues):
        genes = rng.choice(regular_idx, size=min(program_size, regular_idx.size), replace=False)
        signs = np.where(rng.random(genes.size) < 0.7, 1.0, -1.0)
        tissue_program[t, genes] = spec.signal * signs * rng.normal(0.9, 0.3, genes.size)
    disease_program = np.zeros((len(diseases), n_genes), dtype=np.float32)
    for d in range(len(diseases)):
        genes = rng.choice(regular_idx, size=min(program_size // 2 + 1, regular_idx.size), replace=False)
        disease_program[d, genes] = rng.normal(0.0, 0.8, genes.size)

    # Shared programs (proliferation, immune, EMT, hypoxia, ...) whose level depends on the tissue.
    n_factors = 8
    loadings = np.zeros((n_genes, n_factors), dtype=np.float32)
    for f in range(n_factors):
        genes = rng.choice(regular_idx, size=max(3, int(0.05 * n_genes)), replace=False)
        loadings[genes, f] = rng.normal(0.0, 0.6, genes.size)
    factor_means = rng.normal(0.0, 0.6, (n_tissues, n_factors))
    factors = (factor_means[true_tissue] + rng.normal(0.0, 1.0, (n_total, n_factors))).astype(np.float32)

    # Cell states (differentiation, culture stress, ...): strong, heavy-tailed, tissue-independent,
    # acting mostly on lineage genes. They dominate distances between samples (nearest neighbours,
    # RBF kernels) while a linear model can learn to look past their few directions.
    lineage_genes = np.flatnonzero((tissue_program != 0).any(axis=0))
    base[lineage_genes] += 1.5  # expressed well above zero, so that the states rarely clip them
    n_states = 12
    state_loadings = np.zeros((n_genes, n_states), dtype=np.float32)
    for f in range(n_states):
        genes = rng.choice(lineage_genes, size=max(3, lineage_genes.size // 2), replace=False)
        state_loadings[genes, f] = rng.normal(0.0, 1.0, genes.size)
    states = (spec.cell_states * rng.standard_normal((n_total, n_states))).astype(np.float32)

    # How much of its tissue's program a line kept: most keep nearly all, a few drift far.
    identity = rng.beta(6.0, 1.0, n_total).astype(np.float32)
    depth = rng.normal(0.0, 0.15, n_total).astype(np.float32)

    values = rng.standard_normal((n_total, n_genes), dtype=np.float32)
    values *= noise_sd
    values += base
    values += identity[:, None] * tissue_program[true_tissue]
    values += disease_program[sample_disease]
    values += factors @ loadings.T
    values += states @ state_loadings.T
    values += depth[:, None]
    if spec.sub_lineage_share > 0:
        _add_sub_lineages(values, spec, true_tissue, identity, regular_idx, program_size)
    twins = _replicate_twins(spec, labels)
    if twins.size:  # a replicate line: its twin's profile plus noise of its own, the same disease
        twin_rng = np.random.default_rng([spec.seed, 104_729])
        replicas, sources = twins[:, 0], twins[:, 1]
        values[replicas] = values[sources] + REPLICATE_NOISE * noise_sd * twin_rng.standard_normal(
            (replicas.size, n_genes), dtype=np.float32
        )
        sample_disease[replicas] = sample_disease[sources]

    # Rarely expressed genes: on in a small, tissue-dependent fraction of samples, zero elsewhere.
    rare_idx = np.flatnonzero(rare)
    p_on = rng.beta(0.5, 2.2, rare_idx.size)
    marker_of = rng.integers(0, n_tissues, rare_idx.size)
    is_marker = rng.random(rare_idx.size) < 0.25
    p_tissue = np.broadcast_to(p_on, (n_tissues, rare_idx.size)).copy()
    p_tissue[marker_of[is_marker], np.flatnonzero(is_marker)] = np.maximum(
        p_on[is_marker], spec.signal * 0.35
    ).clip(max=0.95)
    on = rng.random((n_total, rare_idx.size)) < p_tissue[true_tissue]
    if twins.size:
        on[twins[:, 0]] = on[twins[:, 1]]
    values[:, rare_idx] = np.where(on, values[:, rare_idx], 0.0)

    # log2(TPM + 1) saturates: compress the few values above 14 smoothly below 18.
    high = values > 14.0
    values[high] = 14.0 + 4.0 * np.tanh((values[high] - 14.0) / 4.0)
    np.maximum(values, 0.0, out=values)
    values[values < 0.05] = 0.0
    values = np.round(values, 3).astype(np.float32)

    # Identifiers: ModelIDs with gaps, SYMBOL (ENTREZID) gene names.
    id_numbers = np.sort(rng.choice(np.arange(1, 3 * n_total + 100), size=n_total, replace=False))
    id_numbers = rng.permutation(id_numbers)
    model_ids = np.array([f"ACH-{n:06d}" for n in id_numbers], dtype=object)
    entrez = rng.choice(np.arange(1, 10 * n_genes + 1000), size=n_genes, replace=False)
    gene_names = [f"GENE{i + 1} ({entrez[i]})" for i in range(n_genes)]

    models = _model_table(rng, spec, model_ids, true_tissue, n_unlabeled, tissues, diseases, sample_disease)
    if twins.size:  # a replicate line belongs to its twin's patient
        patient = dict(zip(models["ModelID"], models["PatientID"]))
        for replica, source in twins:
            patient[model_ids[replica]] = patient[model_ids[source]]
        models["PatientID"] = models["ModelID"].map(patient)
    expression = _expression_table(rng, spec, model_ids, values, gene_names)
    return SyntheticTables(expression=expression, models=models)


REPLICATE_NOISE = 0.6
"""A replicate line's own noise, relative to each gene's noise: z-scored, twins correlate at ~0.8-0.9."""


def _replicate_twins(spec: SyntheticSpec, labels: np.ndarray) -> np.ndarray:
    """``(replica, source)`` row pairs of the same tissue: ``replicate_share`` of the labelled rows are replicas.

    A source is never a replica itself (a patient has one original line); drawn from a random stream of
    its own, so that specs without replicates keep their values.
    """
    n_replicas = round(spec.replicate_share * labels.size)
    if n_replicas == 0:
        return np.empty((0, 2), dtype=np.int64)
    rng = np.random.default_rng([spec.seed, 15_485_863])
    replicas: set[int] = set()
    sources: set[int] = set()
    pairs = []
    for row in rng.permutation(labels.size):
        if len(pairs) == n_replicas:
            break
        if row in sources:
            continue
        options = [r for r in np.flatnonzero(labels == labels[row]) if r != row and r not in replicas]
        if not options:
            continue
        source = int(rng.choice(options))
        replicas.add(int(row))
        sources.add(source)
        pairs.append((int(row), source))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _add_sub_lineages(
    values: np.ndarray,
    spec: SyntheticSpec,
    true_tissue: np.ndarray,
    identity: np.ndarray,
    regular_idx: np.ndarray,
    program_size: int,
) -> None:
    """Add sub-lineages to ``values`` in place: two opposite programs within one tissue.

    A share of the tissues is split in two sub-lineages (as lung cancers are neuroendocrine or not):
    one switches half A of the tissue's sub-lineage genes on and silences half B (the floor at zero
    of log2(TPM+1) turns "down" into "off"), the other does the reverse. The tissue is then two
    clusters on either side of the other tissues, which one linear direction per tissue cannot
    separate from them but a hidden layer can. Drawn from a random stream of its own, so that specs
    without sub-lineages keep their values.
    """
    rng = np.random.default_rng([spec.seed, 7_919])
    n_tissues = spec.n_tissues
    split = rng.choice(n_tissues, size=int(round(spec.sub_lineage_share * n_tissues)), replace=False)
    for t in np.sort(split):
        genes = rng.choice(regular_idx, size=min(program_size, regular_idx.size), replace=False)
        amplitude = spec.signal * spec.sub_lineage_scale * rng.normal(0.9, 0.3, genes.size)
        program = np.where(np.arange(genes.size) < genes.size // 2, amplitude, -amplitude).astype(np.float32)
        members = np.flatnonzero(true_tissue == t)
        side = np.where(rng.random(members.size) < 0.5, 1.0, -1.0).astype(np.float32)
        values[np.ix_(members, genes)] += (side * identity[members])[:, None] * program


def _model_table(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    model_ids: np.ndarray,
    true_tissue: np.ndarray,
    n_unlabeled: int,
    tissues: tuple[str, ...],
    diseases: list[str],
    sample_disease: np.ndarray,
) -> pd.DataFrame:
    import pandas as pd

    n_total = model_ids.size
    lineage = np.array([tissues[t] for t in true_tissue], dtype=object)
    disease = np.array([diseases[d] for d in sample_disease], dtype=object)
    if n_unlabeled:
        lineage[-n_unlabeled:] = ""
        disease[-n_unlabeled:] = ""
    subtype = np.array(
        [f"{d} ({'A' if rng.random() < 0.6 else 'B'})" if d else "" for d in disease], dtype=object
    )
    young = np.isin(true_tissue, [i for i, t in enumerate(tissues) if t in YOUNG])
    age = np.where(young, rng.normal(22, 14, n_total), rng.normal(58, 13, n_total)).clip(1, 89).round()
    age_text = np.array([f"{a:.0f}" for a in age], dtype=object)
    age_text[rng.random(n_total) < 0.06] = ""
    sex = rng.choice(np.array(["Male", "Female", "Unknown"], dtype=object), n_total, p=[0.5, 0.45, 0.05])
    for i, t in enumerate(true_tissue):
        if tissues[t] in FEMALE_ONLY:
            sex[i] = "Female"
        elif tissues[t] in MALE_ONLY:
            sex[i] = "Male"
    # Models with metadata but no expression profile, as in real releases.
    n_extra = max(1, n_total // 5)
    extra_numbers = np.setdiff1d(np.arange(1, 4 * n_total + 200), [int(m[4:]) for m in model_ids])
    extra_ids = np.array(
        [f"ACH-{n:06d}" for n in rng.choice(extra_numbers, n_extra, replace=False)], dtype=object
    )
    extra_tissue = rng.integers(0, len(tissues), n_extra)
    table = pd.DataFrame(
        {
            "ModelID": np.concatenate([model_ids, extra_ids]),
            "PatientID": [f"PT-{i:06d}" for i in rng.permutation(n_total + n_extra)],
            "CellLineName": [f"CL-{i}" for i in range(n_total + n_extra)],
            "DepmapModelType": "",
            "OncotreeLineage": np.concatenate([lineage, [tissues[t] for t in extra_tissue]]),
            "OncotreePrimaryDisease": np.concatenate([disease, [f"{tissues[t]} Cancer" for t in extra_tissue]]),
            "OncotreeSubtype": np.concatenate([subtype, [""] * n_extra]),
            "Age": np.concatenate([age_text, [""] * n_extra]),
            "Sex": np.concatenate([sex, ["Unknown"] * n_extra]),
            "PrimaryOrMetastasis": rng.choice(["Primary", "Metastatic", ""], n_total + n_extra, p=[0.55, 0.35, 0.1]),
        }
    )
    table["DepmapModelType"] = table["OncotreeLineage"].str[:4].str.upper()
    return table.sort_values("ModelID", kind="stable").reset_index(drop=True)


def _expression_table(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    model_ids: np.ndarray,
    values: np.ndarray,
    gene_names: list[str],
) -> pd.DataFrame:
    import pandas as pd

    genes = pd.DataFrame(values, columns=gene_names, copy=False)
    if spec.layout == "classic":
        ids = pd.DataFrame({"": model_ids})
        return pd.concat([ids, genes], axis=1)
    # 25Q3 layout: one or more sequencing profiles per model, one of them the model's default.
    n = model_ids.size
    extra = np.flatnonzero(rng.random(n) < 0.12)
    rows = np.concatenate([np.arange(n), extra])
    default = np.concatenate([np.ones(n, bool), np.zeros(extra.size, bool)])
    perturbed = values[extra] + rng.normal(0.0, 0.4, (extra.size, values.shape[1])).astype(np.float32)
    perturbed = np.round(np.where(values[extra] > 0, np.maximum(perturbed, 0.0), 0.0), 3)
    all_values = np.concatenate([values, perturbed.astype(np.float32)])
    order = rng.permutation(rows.size)
    condition = {m: f"MC-{m[4:]}-{rng.integers(1000, 9999)}" for m in model_ids}
    leading = pd.DataFrame(
        {
            "SequencingID": [f"CDS-{i:06x}" for i in rng.choice(2**24, rows.size, replace=False)[order]],
            "ModelConditionID": [condition[model_ids[r]] for r in rows[order]],
            "ModelID": model_ids[rows[order]],
            "IsDefaultEntryForMC": np.where(default[order], "Yes", "No"),
            "IsDefaultEntryForModel": np.where(default[order], "Yes", "No"),
        }
    )
    genes = pd.DataFrame(all_values[order], columns=gene_names, copy=False)
    return pd.concat([leading, genes], axis=1)


def write_tables(tables: SyntheticTables, directory: Path, layout: str) -> tuple[Path, Path]:
    """Write the expression CSV (pyarrow, fixed 3-decimal values) and Model.csv into ``directory``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    directory.mkdir(parents=True, exist_ok=True)
    name = CLASSIC_EXPRESSION_FILE if layout == "classic" else Q3_2025_EXPRESSION_FILE
    expression_path = directory / name
    table = pa.Table.from_pandas(tables.expression, preserve_index=False)
    with open(expression_path, "wb") as out:
        # Unquoted header as DepMap publishes it (pyarrow would quote every name).
        out.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(
            table, out, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
    model_path = directory / MODEL_FILE
    tables.models.to_csv(model_path, index=False, lineterminator="\n")
    return expression_path, model_path


def generate_files(spec: SyntheticSpec, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Generate ``spec`` and write its two DepMap-layout files into ``directory``."""
    tables = generate_tables(spec)
    return write_tables(tables, Path(directory), spec.layout)


CHECKSUM_FILE = "checksums.json"
"""Written next to the generated files: the spec's key and each file's size, SHA-256 and shape."""


def ensure_files(spec: SyntheticSpec, cache_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The generated files for ``spec`` under ``cache_dir/synthetic/<key>``, made once, atomically.

    Files already there are used only if they match ``checksums.json`` (the spec's key, each file's
    size and SHA-256): a truncated, garbled or misplaced file is removed and generated again (one
    warning), never read as a smaller data set under the same fingerprint.
    """
    root = Path(cache_dir) / "synthetic"
    final = root / spec.key()[:16]
    name = CLASSIC_EXPRESSION_FILE if spec.layout == "classic" else Q3_2025_EXPRESSION_FILE
    paths = (final / name, final / MODEL_FILE)
    if check_files(final, spec, (name, MODEL_FILE)) is None:
        return paths
    with file_lock(root / f".lock-{final.name}"):
        problem = check_files(final, spec, (name, MODEL_FILE))  # again: another process may have fixed it
        if problem is None:
            return paths
        if final.exists():
            _discard(final, problem)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            log.debug("generating synthetic data set %s into %s", spec, final)
            tables = generate_tables(spec)
            written = write_tables(tables, staging, spec.layout)
            _write_checksums(staging, spec, dict(zip(written, (tables.expression.shape, tables.models.shape))))
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return paths


def check_files(directory: Path, spec: SyntheticSpec, names: tuple[str, ...]) -> str | None:
    """Why the generated files in ``directory`` cannot be used for ``spec`` (None when they can)."""
    if not directory.exists():
        return "missing"
    try:
        record = json.loads((directory / CHECKSUM_FILE).read_text())
    except FileNotFoundError:
        return f"{directory}: no {CHECKSUM_FILE} (made by an older version)"
    except (OSError, ValueError) as error:
        return f"{directory / CHECKSUM_FILE}: unreadable ({str(error).splitlines()[0]})"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return f"{directory / CHECKSUM_FILE}: not a checksum record"
    if record.get("spec_key") != spec.key():
        return f"{directory / CHECKSUM_FILE}: made for spec {str(record.get('spec_key'))[:16]}, expected {spec.key()[:16]}"
    for name in names:
        path, expected = directory / name, record["files"].get(name)
        if not isinstance(expected, dict):
            return f"{path}: not in {CHECKSUM_FILE}"
        shape = f"{expected.get('rows')} rows x {expected.get('columns')} columns"
        try:
            size = path.stat().st_size
            if size != expected.get("bytes"):
                return f"{path}: {size} bytes, expected {expected.get('bytes')} ({shape})"
            if hash_file(path) != expected.get("sha256"):
                return f"{path}: content differs from its SHA-256 (bytes changed after it was generated)"
        except OSError as error:
            return f"{path}: unreadable ({error.strerror or error})"
    return None


def _write_checksums(directory: Path, spec: SyntheticSpec, shapes: dict[Path, tuple[int, int]]) -> None:
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": hash_file(path), "rows": rows, "columns": columns}
        for path, (rows, columns) in shapes.items()
    }
    record = {"spec_key": spec.key(), "files": files}
    (directory / CHECKSUM_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))


def _discard(directory: Path, problem: str) -> None:
    """Remove unusable generated files (regenerable, so not kept): a warning unless merely older."""
    if problem.endswith("(made by an older version)"):
        log.info("regenerating synthetic files: %s", problem)
    else:
        log.warning("damaged synthetic files: %s; regenerating", problem)
    doomed = directory.with_name(f".tmp-discarded-{directory.name}-{time.time_ns()}")
    os.rename(directory, doomed)
    shutil.rmtree(doomed, ignore_errors=True)

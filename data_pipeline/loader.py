"""Read DepMap release files: the expression matrix and Model.csv, joined on ModelID.

Two expression layouts are recognised from the header (never from the file name):

* ``classic`` - ``OmicsExpressionProteinCodingGenesTPMLogp1.csv`` (22Q2 ... 25Q2): the first
  column (unnamed, or ``ModelID``) holds ModelIDs, one row per model, then one column per gene
  named ``SYMBOL (ENTREZID)``.
* ``25q3`` - ``OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv`` (25Q3 on): leading columns
  ``SequencingID, ModelConditionID, ModelID, IsDefaultEntryForMC, IsDefaultEntryForModel``,
  several rows per model; the rows with ``IsDefaultEntryForModel == "Yes"`` are kept.

Model.csv columns are read by name. The older ``CCLE_expression.csv`` + ``sample_info.csv`` pair
(up to 22Q2) also loads: its matrix has the classic shape and ``DepMap_ID``, ``primary_disease``,
``age``, ``sex`` stand in for the Model.csv names (the label column is then e.g. ``lineage``).
Files may be gzip-compressed (detected from the content).
The matrix is parsed by pyarrow's multithreaded CSV reader straight into float32.
"""

from __future__ import annotations

import gzip
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from data_pipeline.errors import DataError

log = logging.getLogger(__name__)

ID_COLUMN_NAMES = ("", "ModelID", "Unnamed: 0", "DepMap_ID")
Q3_2025_LEADING = ("SequencingID", "ModelConditionID", "ModelID", "IsDefaultEntryForMC", "IsDefaultEntryForModel")
METADATA_COLUMNS = ("OncotreePrimaryDisease", "OncotreeSubtype", "Age", "Sex", "PatientID")
"""Model.csv columns carried into the prepared data set's sample_info (when present); a patient's
models (``PatientID``) stay together in one split and one CV fold."""
LEGACY_METADATA_NAMES = {
    "DepMap_ID": "ModelID", "primary_disease": "OncotreePrimaryDisease", "Subtype": "OncotreeSubtype",
    "age": "Age", "sex": "Sex",
}
"""sample_info.csv (releases up to 22Q2) names -> Model.csv names, used only where the latter are absent."""


@dataclass(frozen=True)
class ExpressionMatrix:
    """An expression matrix as read: float32 values, one row per model."""

    values: np.ndarray
    model_ids: list[str]
    gene_names: list[str]
    layout: str
    path: Path


@dataclass(frozen=True)
class LabelledData:
    """Expression rows joined with their metadata; unlabelled samples already dropped."""

    values: np.ndarray
    model_ids: list[str]
    gene_names: list[str]
    labels: list[str]
    metadata: pd.DataFrame
    """One row per sample (same order), columns METADATA_COLUMNS (missing ones empty)."""
    layout: str
    n_expression_rows: int
    n_unlabeled: int
    n_without_metadata: int
    expression_path: Path | None = None
    """The expression file the values came from (for messages about them)."""


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _check_readable(path: Path, what: str) -> None:
    if not path.exists():
        raise DataError(f"{path}: {what} file not found")
    if not path.is_file():
        raise DataError(f"{path}: {what} path is not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise DataError(f"{path}: cannot read {what} file ({error.strerror or error})") from None


def _read_header(path: Path, what: str) -> list[str]:
    """The first line of a (possibly gzipped) CSV, split into column names."""
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            first = handle.readline()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read {what} file ({error})") from None
    if not first.strip():
        raise DataError(f"{path}: {what} file is empty")
    if b"\x00" in first:
        raise DataError(f"{path}: {what} file is not CSV text (binary content)")
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(f"{path}: {what} file is not CSV text (not UTF-8)") from None
    return [name.strip().strip('"') for name in text.split(",")]


def detect_layout(header: list[str], path: Path) -> tuple[str, int]:
    """Return ``(layout, n_leading_columns)`` for an expression header."""
    if "IsDefaultEntryForModel" in header:
        leading = 0
        while leading < len(header) and (header[leading] in Q3_2025_LEADING or header[leading] in ID_COLUMN_NAMES):
            leading += 1
        if "ModelID" not in header[:leading]:
            raise DataError(f"{path}: 25Q3-layout expression file has no ModelID column before the genes")
        return "25q3", leading
    if len(header) < 2:
        raise DataError(
            f"{path}: not an expression matrix: the header has {len(header)} column "
            "(expected a ModelID column and gene columns, comma-separated)"
        )
    if header[0] not in ID_COLUMN_NAMES and not header[0].startswith("Unnamed"):
        raise DataError(
            f"{path}: unrecognised expression layout: first column {header[0]!r} "
            "(expected an unnamed or 'ModelID' column, or the 25Q3 columns "
            "SequencingID, ModelConditionID, ModelID, IsDefaultEntryForMC, IsDefaultEntryForModel)"
        )
    return "classic", 1


def read_expression(path: str | Path) -> ExpressionMatrix:
    """Read a DepMap expression matrix (either layout, optionally gzipped) into float32."""
    path = Path(path)
    _check_readable(path, "expression")
    header = _read_header(path, "expression")
    layout, leading = detect_layout(header, path)
    genes = header[leading:]
    if not genes:
        raise DataError(f"{path}: expression file has no gene columns")
    empty = [leading + i + 1 for i, gene in enumerate(genes) if not gene]
    if empty:
        more = f" ({len(empty)} in all)" if len(empty) > 1 else ""
        raise DataError(f"{path}: empty gene column header at column {empty[0]} of {len(header)}{more}; "
                        "every gene column needs a name")
    duplicates = pd.Index(genes)[pd.Index(genes).duplicated()].unique().tolist()
    if duplicates:
        raise DataError(f"{path}: duplicate gene columns, e.g. {duplicates[0]!r} ({len(duplicates)} in all)")
    # Leading columns get generated names: the classic ID column is often unnamed.
    column_names = [f"__lead{i}" for i in range(leading)] + genes
    types = {name: pa.string() for name in column_names[:leading]}
    types.update({name: pa.float32() for name in genes})
    try:
        with pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=column_names, skip_rows=1, block_size=8 << 20),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False),
            )
    except pa.ArrowInvalid as error:
        message = str(error).splitlines()[0]
        if "conversion error to float" in message:
            found = re.search(r"column #(\d+)", message)
            column = header[int(found.group(1))] if found and int(found.group(1)) < len(header) else "?"
            value = message.split("invalid value", 1)[-1].strip()
            raise DataError(f"{path}: non-numeric expression value {value} in column {column!r}") from None
        raise DataError(f"{path}: not a valid CSV expression matrix: {message}") from None
    except (OSError, pa.ArrowException) as error:
        raise DataError(f"{path}: cannot read expression file: {str(error).splitlines()[0]}") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: expression file has a header but no rows")

    lead = {header[i]: table.column(i).to_numpy(zero_copy_only=False) for i in range(leading)}
    keep = np.ones(table.num_rows, dtype=bool)
    if layout == "25q3":
        ids = lead["ModelID"]
        flag = np.char.lower(lead["IsDefaultEntryForModel"].astype(str))
        keep = np.isin(flag, ("yes", "true", "1"))
        log.info("%s: %d of %d profiles are models' default entries", path.name, int(keep.sum()), keep.size)
    else:
        ids = lead[header[0]]
    model_ids = [str(m).strip() for m in ids[keep]]
    if any(not m for m in model_ids):
        raise DataError(f"{path}: expression rows with an empty ModelID")
    seen = pd.Index(model_ids)
    if seen.has_duplicates:
        duplicate = seen[seen.duplicated()][0]
        raise DataError(f"{path}: duplicate ModelID {duplicate!r} in the expression rows")

    rows = np.flatnonzero(keep)
    values = np.empty((rows.size, len(genes)), dtype=np.float32)
    all_rows = rows.size == table.num_rows
    for j in range(len(genes)):
        column = table.column(leading + j)
        array = column.to_numpy() if column.null_count == 0 else column.to_numpy(zero_copy_only=False)
        values[:, j] = array if all_rows else array[rows]
    _check_finite(values, path, model_ids, genes)
    return ExpressionMatrix(values=values, model_ids=model_ids, gene_names=genes, layout=layout, path=path)


def count_and_first(mask: np.ndarray) -> tuple[int, int, int]:
    """``(how many True, row, column of the first)`` of a 2-D mask, without listing every index."""
    count = int(np.count_nonzero(mask))
    row, col = np.unravel_index(int(np.argmax(mask)), mask.shape) if count else (0, 0)
    return count, int(row), int(col)


def _check_finite(values: np.ndarray, path: Path, model_ids: list[str], genes: list[str]) -> None:
    """Missing (NaN) and infinite values stop the load: they would poison every statistic downstream."""
    if np.isfinite(values).all():
        return
    n_missing, row, col = count_and_first(np.isnan(values))
    if n_missing:
        raise DataError(
            f"{path}: {n_missing} missing expression value(s), e.g. ModelID {model_ids[row]!r}, gene {genes[col]!r}"
        )
    n_infinite, row, col = count_and_first(np.isinf(values))
    raise DataError(
        f"{path}: {n_infinite} infinite expression value(s) (inf, or beyond float32's range), "
        f"e.g. {values[row, col]} at ModelID {model_ids[row]!r}, gene {genes[col]!r}; expected finite numbers"
    )


def read_models(path: str | Path, label_column: str) -> pd.DataFrame:
    """Read Model.csv (by column name) indexed by ModelID, all columns as stripped strings."""
    path = Path(path)
    _check_readable(path, "model metadata")
    _read_header(path, "model metadata")
    try:
        table = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            compression="gzip" if _is_gzip(path) else None,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a valid CSV metadata file: {str(error).splitlines()[0]}") from None
    if table.empty:
        raise DataError(f"{path}: model metadata file has a header but no rows")
    table.columns = [str(c).strip() for c in table.columns]
    renames = {old: new for old, new in LEGACY_METADATA_NAMES.items() if old in table.columns and new not in table.columns}
    table = table.rename(columns=renames)
    if "ModelID" not in table.columns:
        raise DataError(f"{path}: metadata file has no 'ModelID' column")
    if label_column not in table.columns:
        shown = ", ".join(c for c in table.columns if c.startswith("Oncotree")) or ", ".join(table.columns[:8])
        raise DataError(f"{path}: label column {label_column!r} not found (available: {shown}, ...)")
    table = table.apply(lambda column: column.str.strip())
    ids = pd.Index(table["ModelID"])
    if ids.has_duplicates:
        raise DataError(f"{path}: duplicate ModelID {ids[ids.duplicated()][0]!r} in the metadata")
    return table.set_index("ModelID")


def load_labelled(expression_path: str | Path, model_path: str | Path, label_column: str) -> LabelledData:
    """Read both files, join on ModelID and drop samples without a label (counted and logged)."""
    models = read_models(model_path, label_column)
    matrix = read_expression(expression_path)
    in_metadata = np.array([m in models.index for m in matrix.model_ids])
    if not in_metadata.any():
        raise DataError(
            f"{matrix.path}: no ModelID in common with {model_path} "
            f"(e.g. {matrix.model_ids[0]!r} vs {models.index[0]!r})"
        )
    n_without_metadata = int((~in_metadata).sum())
    present = [m for m, ok in zip(matrix.model_ids, in_metadata) if ok]
    labels = models.loc[present, label_column].to_numpy(dtype=object)
    labelled = np.array([bool(label) and label.lower() not in ("nan", "na", "none") for label in labels])
    n_unlabeled = int((~labelled).sum())
    if n_without_metadata or n_unlabeled:
        log.info(
            "dropped %d unlabelled sample(s) (%d with an empty %s, %d not in %s)",
            n_without_metadata + n_unlabeled, n_unlabeled, label_column, n_without_metadata, Path(model_path).name,
        )
    rows = np.flatnonzero(in_metadata)[labelled]
    labels = labels[labelled]
    # Sorted by ModelID: splits then do not depend on the files' row order.
    order = np.argsort(np.array([matrix.model_ids[i] for i in rows]), kind="stable")
    rows, labels = rows[order], labels[order]
    kept_ids = [matrix.model_ids[i] for i in rows]
    metadata = pd.DataFrame(index=pd.Index(kept_ids, name="ModelID"))
    for column in METADATA_COLUMNS:
        metadata[column] = models.loc[kept_ids, column].to_numpy(dtype=object) if column in models.columns else ""
    values = matrix.values[rows]
    return LabelledData(
        values=values,
        model_ids=kept_ids,
        gene_names=matrix.gene_names,
        labels=[str(label) for label in labels],
        metadata=metadata,
        layout=matrix.layout,
        n_expression_rows=len(matrix.model_ids),
        n_unlabeled=n_without_metadata + n_unlabeled,
        n_without_metadata=n_without_metadata,
        expression_path=matrix.path,
    )

"""Hand-written DepMap-format files for the data pipeline tests (a few rows, real column layout)."""

from __future__ import annotations

import gzip
from pathlib import Path

GENES = ["TSPAN6 (7105)", "TNMD (64102)", "DPM1 (8813)", "SCYL3 (57147)", "C1orf112 (55732)", "FGR (2268)"]

# 14 models: 6 Lung, 6 Skin, 1 unlabelled, 1 expression row without metadata.
EXPRESSION_ROWS = [
    ("ACH-000001", [4.331, 0.0, 7.112, 2.2, 3.9, 0.0]),
    ("ACH-000002", [4.102, 0.0, 6.901, 2.9, 3.1, 0.5]),
    ("ACH-000003", [5.012, 0.12, 7.402, 2.1, 3.6, 0.0]),
    ("ACH-000004", [4.781, 0.0, 7.013, 2.6, 3.3, 0.2]),
    ("ACH-000005", [4.555, 0.0, 6.811, 2.4, 3.8, 0.0]),
    ("ACH-000006", [4.901, 0.3, 7.222, 2.3, 3.2, 0.1]),
    ("ACH-000007", [1.201, 3.4, 5.102, 4.2, 0.9, 6.1]),
    ("ACH-000008", [1.502, 3.1, 5.331, 4.8, 1.4, 5.7]),
    ("ACH-000009", [0.903, 2.7, 5.012, 4.1, 1.1, 6.4]),
    ("ACH-000010", [1.344, 3.9, 4.913, 4.6, 0.7, 5.9]),
    ("ACH-000011", [1.110, 2.9, 5.224, 4.4, 1.2, 6.0]),
    ("ACH-000012", [0.777, 3.3, 5.101, 4.9, 0.8, 6.3]),
    ("ACH-000013", [2.5, 1.5, 6.0, 3.5, 2.0, 3.0]),
    ("ACH-000099", [2.4, 1.4, 6.1, 3.4, 2.1, 3.1]),
]

MODEL_HEADER = (
    "ModelID,PatientID,CellLineName,StrippedCellLineName,DepmapModelType,OncotreeLineage,"
    "OncotreePrimaryDisease,OncotreeSubtype,OncotreeCode,Age,Sex,Constant"
)
MODEL_ROWS = [
    *(f"ACH-{i:06d},PT-{i},LINE-{i},LINE{i},NSCLC,Lung,Non-Small Cell Lung Cancer,Lung Adenocarcinoma,LUAD,{50 + i},Male,X"
      for i in range(1, 7)),
    *(f"ACH-{i:06d},PT-{i},LINE-{i},LINE{i},SKCM,Skin,Melanoma,Cutaneous Melanoma,SKCM,{30 + i},Female,X"
      for i in range(7, 13)),
    "ACH-000013,PT-13,LINE-13,LINE13,,,,,,,Unknown,X",
    "ACH-000500,PT-500,LINE-500,LINE500,BRCA,Breast,Invasive Breast Carcinoma,,BRCA,61,Female,X",
]


def classic_expression_text(rows=EXPRESSION_ROWS, genes=GENES) -> str:
    lines = ["," + ",".join(genes)]
    lines += [model + "," + ",".join(f"{v:g}" for v in values) for model, values in rows]
    return "\n".join(lines) + "\n"


def q3_expression_text(rows=EXPRESSION_ROWS, genes=GENES) -> str:
    """25Q3 layout: an extra non-default profile for the first model, listed before its default."""
    lead = "SequencingID,ModelConditionID,ModelID,IsDefaultEntryForMC,IsDefaultEntryForModel"
    lines = [lead + "," + ",".join(genes)]
    first_model, first_values = rows[0]
    lines.append(f"CDS-X0,MC-{first_model}-old,{first_model},No,No," + ",".join("99" for _ in first_values))
    for i, (model, values) in enumerate(rows):
        lines.append(f"CDS-{i:04d},MC-{model}-1,{model},Yes,Yes," + ",".join(f"{v:g}" for v in values))
    return "\n".join(lines) + "\n"


def model_text(rows=MODEL_ROWS) -> str:
    return MODEL_HEADER + "\n" + "\n".join(rows) + "\n"


def write(path: Path, text: str, *, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def write_pair(directory: Path, *, layout: str = "classic", compress: bool = False) -> tuple[Path, Path]:
    suffix = ".csv.gz" if compress else ".csv"
    name = "OmicsExpressionProteinCodingGenesTPMLogp1" if layout == "classic" else "OmicsExpressionTPMLogp1HumanProteinCodingGenes"
    text = classic_expression_text() if layout == "classic" else q3_expression_text()
    expression = write(directory / (name + suffix), text, compress=compress)
    model = write(directory / ("Model" + suffix), model_text(), compress=compress)
    return expression, model

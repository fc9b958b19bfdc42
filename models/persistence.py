"""The metadata file every saved model directory holds: name, parameters, seed, shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METADATA_FILE = "model.json"
FORMAT_VERSION = 1


def write_metadata(directory: Path, *, name: str, params: dict[str, Any], seed: int, **extra: Any) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / METADATA_FILE
    record = {"format_version": FORMAT_VERSION, "name": name, "params": params, "seed": seed, **extra}
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return path


def read_metadata(directory: Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no saved model in {directory}: {METADATA_FILE} is missing")
    record = json.loads(path.read_text())
    if record.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {record.get('format_version')!r}")
    return record

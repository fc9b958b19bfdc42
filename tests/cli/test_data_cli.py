"""``hpo data prepare`` / ``hpo data summary`` / ``hpo data generate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hpo.cli import main
from tests.support import data_samples as samples

ROOT = Path(__file__).resolve().parents[2]


def test_prepare_help_lists_the_data_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["data", "prepare", "--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for option in ("--preset", "--expression", "--model", "--label-column", "--top-k-genes", "--cache-dir", "--study"):
        assert option in text


def test_prepare_then_summary_on_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    assert main(["data", "prepare", "--preset", "tiny", "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "prepared 6 tissues" in out and "train 126, val 27, test 27" in out
    report = tmp_path / "report.html"
    assert main(["data", "summary", "--preset", "tiny", "--cache-dir", cache, "--out", str(report)]) == 0
    out = capsys.readouterr().out
    assert "genes before filtering  400" in out
    assert "unlabelled dropped      4" in out
    assert "Lung" in out and "sparsity" in out
    html = report.read_text()
    for title in ("samples per tissue", "Age at sampling", "Primary disease", "Sparsity per gene", "Jaccard"):
        assert title in html
    # offline and small: the page loads the plotly.min.js written beside it (the default, 'shared')
    assert "src='plotly.min.js'" in html and len(html) < 1_000_000
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    single = tmp_path / "single" / "report.html"
    assert main(["data", "summary", "--preset", "tiny", "--cache-dir", cache, "--out", str(single),
                 "--plotly-js", "inline"]) == 0
    assert len(single.read_text()) > 1_000_000 and not (single.parent / "plotly.min.js").exists()  # self-contained


def test_study_file_data_table_with_option_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "study.toml"
    study.write_text('[data]\npreset = "tiny"\ntop_k_genes = 40\n')
    cache = str(tmp_path / "cache")
    assert main(["data", "prepare", "--study", str(study), "--top-k-genes", "30", "--cache-dir", cache]) == 0
    assert "30 genes" in capsys.readouterr().out
    study.write_text('[data]\npreset = "tiny"\ntop_k = 40\n')
    with pytest.raises(ValueError, match=f"{study}: \\[data\\] unknown key 'top_k'"):
        main(["-v", "data", "prepare", "--study", str(study), "--cache-dir", cache])


def test_generate_writes_depmap_files(tmp_path: Path) -> None:
    assert main(["data", "generate", "--preset", "tiny", "--layout", "25q3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "OmicsExpressionTPMLogp1HumanProteinCodingGenes.csv").is_file()
    assert (tmp_path / "Model.csv").is_file()


def test_bad_file_exits_2_with_one_line_on_stderr(tmp_path: Path) -> None:
    expression, model = samples.write_pair(tmp_path / "files")
    expression.write_text(samples.classic_expression_text().replace("7.112", "n/a?"))
    result = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "data", "prepare", "--expression", str(expression), "--model", str(model),
         "--min-samples-per-tissue", "3", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hpo data: error: ") and str(expression) in lines[0] and "non-numeric" in lines[0]

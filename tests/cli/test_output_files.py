"""``--out`` never replaces what is there unless ``--force``: not a file, not through a link, not a read-only file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from hpo.cli import main
from hpo.cli._options import claim_output_file, claim_output_folder, write_in_place
from hpo.run import run_worker
from hpo.study import load_study_file
from tests.run.test_workers import sqlite_url, tiny_study


@pytest.fixture(autouse=True)
def _private_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_HOME", str(tmp_path / "hpo-home"))


def test_an_existing_file_or_link_is_refused_and_replaced_whole_with_force(tmp_path):
    kept = tmp_path / "kept.toml"
    kept.write_text("precious\n")
    kept.chmod(stat.S_IRUSR)  # read-only
    link = tmp_path / "link.toml"
    link.symlink_to(kept)
    dangling = tmp_path / "dangling.toml"
    dangling.symlink_to(tmp_path / "nowhere.toml")
    for path, kind in ((kept, "a file"), (link, "a symbolic link"), (dangling, "a symbolic link")):
        with pytest.raises(ValueError, match=rf"--out {path}: {kind} is there already; give --force"):
            claim_output_file(path, force=False)
    with pytest.raises(ValueError, match="is a folder"):
        claim_output_file(tmp_path, force=True)
    assert claim_output_file(tmp_path / "new.toml", force=False) == tmp_path / "new.toml"

    write_in_place(claim_output_file(link, force=True), lambda temporary: temporary.write_text("new\n"))
    assert not link.is_symlink() and link.read_text() == "new\n"
    assert kept.read_text() == "precious\n"  # the link's target was not written through
    write_in_place(claim_output_file(kept, force=True), lambda temporary: temporary.write_text("new\n"))
    assert kept.read_text() == "new\n"  # a read-only file replaced on --force

    def failing(temporary):
        temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_in_place(kept, failing)
    assert kept.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))  == []


def test_a_results_folder_that_holds_files_is_refused_without_force(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_output_folder(empty, force=False) == empty
    assert claim_output_folder(tmp_path / "new", force=False) == tmp_path / "new"
    (empty / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="the folder holds files already; give --force"):
        claim_output_folder(empty, force=False)
    assert claim_output_folder(empty, force=True) == empty
    link = tmp_path / "link"
    link.symlink_to(empty)
    with pytest.raises(ValueError, match="a symbolic link is there already"):
        claim_output_folder(link, force=False)
    # through the real command line: one line, exit 2, before any training
    done = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "train", "--model", "logistic_regression", "--out", str(empty)],
        check=False, capture_output=True, text=True, timeout=120, env={**os.environ},
    )
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"hpo train: error: --out {empty}: the folder holds files already; give --force to overwrite them, or another --out"
    ], done.stderr
    assert (empty / "metrics.json").read_text() == "{}"


@pytest.mark.slow
def test_hpo_export_refuses_to_overwrite_unless_forced(tmp_path, tiny_dataset, tiny_data_config, capsys):
    url = sqlite_url(tmp_path)
    path = tiny_study(tmp_path, tiny_data_config, name="exported", n_trials=1)
    run_worker(load_study_file(path), storage_url=url, worker_index=0, num_threads=1)
    target = tmp_path / "mine.toml"
    target.write_text("mine\n")
    link = tmp_path / "best.toml"
    link.symlink_to(target)
    assert main(["export", "exported", "--storage", url, "--out", str(link)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"hpo export: error: --out {link}: a symbolic link is there already; give --force to replace it, or another --out"
    )
    assert target.read_text() == "mine\n"
    assert main(["export", "exported", "--storage", url, "--out", str(link), "--force"]) == 0
    assert not link.is_symlink() and "[source]" in link.read_text() and target.read_text() == "mine\n"
    assert main(["export", "exported", "--storage", url, "--out", str(link)]) == 2  # and now it is a file

"""The files `vortex train` learns from: named, under directories or by globs, and never a
file that MANIFEST.tsv marks bench-only, in the default install as with the neural extra."""

from __future__ import annotations

import pytest
from conftest import run_vortex

from vortexfmt.errors import VortexError
from vortexfmt.training_files import expand_inputs


def test_bench_only_corpus_files_are_refused(tmp_path):
    (tmp_path / "MANIFEST.tsv").write_text("file\tuse\nsecret.bin\tbench-only\n")
    (tmp_path / "secret.bin").write_bytes(b"x" * 100)
    with pytest.raises(VortexError, match="bench-only"):
        expand_inputs([str(tmp_path / "secret.bin")])
    with pytest.raises(VortexError, match="bench-only"):
        expand_inputs([str(tmp_path)])


def test_directories_and_globs_expand_to_files(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"b")
    assert {p.name for p in expand_inputs([str(tmp_path)])} == {"a.bin", "b.bin"}
    assert {p.name for p in expand_inputs([str(tmp_path / "*.bin")])} == {"a.bin"}


def test_a_manifest_without_a_use_column_or_empty_refuses_nothing(tmp_path):
    (tmp_path / "MANIFEST.tsv").write_text("file\tsource\nsecret.bin\tsomewhere\n")
    (tmp_path / "secret.bin").write_bytes(b"x")
    assert [p.name for p in expand_inputs([str(tmp_path / "secret.bin")])] == ["secret.bin"]
    (tmp_path / "MANIFEST.tsv").write_text("")
    assert [p.name for p in expand_inputs([str(tmp_path / "secret.bin")])] == ["secret.bin"]


def test_missing_inputs_and_empty_directories_are_errors(tmp_path):
    with pytest.raises(VortexError, match="no such file"):
        expand_inputs([str(tmp_path / "absent.bin")])
    with pytest.raises(VortexError, match="no training data"):
        expand_inputs([str(tmp_path)])


def test_cli_train_refuses_a_bench_only_file(tmp_path):
    (tmp_path / "MANIFEST.tsv").write_text("file\tuse\nsecret.bin\tbench-only\n")
    (tmp_path / "secret.bin").write_bytes(b"x" * 1000)
    result = run_vortex("train", tmp_path / "secret.bin", "-o", tmp_path / "p.vxprofile")
    assert result.returncode != 0
    assert b"bench-only" in result.stderr
    assert not (tmp_path / "p.vxprofile").exists()

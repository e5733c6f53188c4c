"""pyoci.state.write_atomic: the one way pyoci replaces state.json, the network store and
seccomp cache entries. Checked on real files in a temp directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyoci.state import write_atomic


def test_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_atomic(str(target), b"one")
    assert target.read_bytes() == b"one"
    assert target.stat().st_mode & 0o777 == 0o600
    write_atomic(str(target), b"two" * 100_000, mode=0o644)
    assert target.read_bytes() == b"two" * 100_000
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "pid").symlink_to(victim)
    write_atomic(str(tmp_path / "pid"), b"123")
    assert victim.read_bytes() == b"keep"
    assert not (tmp_path / "pid").is_symlink()
    assert (tmp_path / "pid").read_bytes() == b"123"


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_bytes(b"")  # a non-empty directory: rename fails
    with pytest.raises(OSError):
        write_atomic(str(tmp_path / "busy"), b"data")
    assert sorted(os.listdir(tmp_path)) == ["busy"]


def test_an_unwritable_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(str(tmp_path / "missing" / "f"), b"data")

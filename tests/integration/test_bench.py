"""`make bench` must keep working: tools/bench.py --quick (one run of each case, all sections)
prints the table with every row and writes its JSON. No timing is asserted, ever: only that
each row is there and that pyoci's own cells are numbers (a broken pyoci makes them `n/a`).
Rows that need a client (podman, docker, containerd) may be n/a when the tool is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Rows whose pyoci cell must hold a measurement whatever is installed.
PYOCI_ROWS = ("floor", "run", "create", "start", "state", "kill", "delete", "growth.10.state",
              "growth.10.create", "growth.10.list", "parallel", "memory.created")  # fmt: skip
CLIENT_ROWS = ("podman.create.cold", "podman.create.warm", "docker.create.cold",
               "docker.create.warm", "podman.run", "ctr.run")  # fmt: skip


def test_bench_quick_prints_every_row(pyoci_bin: str, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the bench starts real containers: run as root")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench.py"), "--quick", "--pyoci", pyoci_bin,
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert set(PYOCI_ROWS + CLIENT_ROWS) <= set(rows), sorted(rows)
    for key in PYOCI_ROWS:
        cell = rows[key]["cells"]["pyoci"]
        assert "median" in cell, f"{key}: {cell}"
        assert rows[key]["title"] in result.stdout  # the table has the row
    for key in CLIENT_ROWS:
        assert rows[key]["title"] in result.stdout
    assert "floor (python -I -S -c pass)" in result.stdout
    assert "pyoci above it: start" in result.stdout

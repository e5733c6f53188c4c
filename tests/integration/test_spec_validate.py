"""`pyoci spec` writes a default config that `pyoci validate` accepts; `validate` reports
every problem as `<json.path>: <reason>`."""

from __future__ import annotations

import json

import pytest
from conftest import BUSYBOX_BUNDLE, BUSYBOX_ROOTFS
from helpers import one_line_error


def test_spec_writes_a_config_that_validates(pyoci, tmp_path):
    bundle_dir = tmp_path / "new-bundle"
    bundle_dir.mkdir()
    result = pyoci("spec", "--bundle", str(bundle_dir))
    assert result.returncode == 0, result.stderr
    config = json.loads((bundle_dir / "config.json").read_text())
    assert config["ociVersion"] == "1.3.0"  # pyoci.OCI_VERSION
    assert config["root"]["path"] == "rootfs"
    assert config["process"]["args"]
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert {"pid", "mount", "network", "ipc", "uts"} <= types

    (bundle_dir / "rootfs").mkdir()
    validated = pyoci("validate", "--bundle", str(bundle_dir))
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout == "OK\n"


def test_spec_in_the_current_directory(pyoci, tmp_path):
    result = pyoci("spec", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "config.json").read_text())["ociVersion"]


def test_spec_refuses_to_overwrite(pyoci, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"mine": true}\n')
    result = pyoci("spec", "--bundle", str(tmp_path))
    assert result.returncode == 1
    assert "already exists" in one_line_error(result.stderr)
    assert config.read_text() == '{"mine": true}\n'


def test_validate_without_rootfs_names_root_path(pyoci, tmp_path):
    assert pyoci("spec", "--bundle", str(tmp_path)).returncode == 0
    result = pyoci("validate", "--bundle", str(tmp_path))
    assert result.returncode == 1
    assert any(line.startswith("root.path") for line in result.stdout.splitlines()), result


def test_validate_busybox_bundle_prints_ok(pyoci):
    if not BUSYBOX_ROOTFS.is_dir():
        pytest.skip(f"busybox rootfs missing at {BUSYBOX_ROOTFS}: run `make bundles`")
    result = pyoci("validate", "--bundle", str(BUSYBOX_BUNDLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "OK\n"


def test_validate_reports_every_problem(pyoci, tmp_path):
    assert pyoci("spec", "--bundle", str(tmp_path)).returncode == 0
    (tmp_path / "rootfs").mkdir()
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    config["mounts"][0]["type"] = 7
    config["process"]["args"] = []
    config["linux"]["namespaces"].append({"type": "pid"})
    path.write_text(json.dumps(config))
    result = pyoci("validate", "--bundle", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines() + result.stderr.splitlines()
    text = "\n".join(lines)
    for field in ("mounts[0].type", "process.args", "linux.namespaces[6]"):
        assert any(field in line for line in lines), f"{field} not reported:\n{text}"

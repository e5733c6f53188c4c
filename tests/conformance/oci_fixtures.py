"""The conformance suite's fixtures, a pytest plugin the test modules load with
`pytest_plugins = ["oci_fixtures"]` (a conftest.py here would shadow tests/conftest.py, which
other test directories import by name). The harness itself is oci_conformance.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from oci_conformance import (
    CGROUP_PREFIX,
    FALLBACK_VERSION,
    PROBE_SOURCE,
    ROOTFS,
    SPEC_VERSION,
    Lab,
    Runtime,
    drop_pristine,
    remove_cgroup_tree,
    unified_root,
    v1_controllers,
)


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def oci_runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """The runtime under test, started (crun's namespace) and probed once per session."""
    if os.geteuid() != 0:
        pytest.skip("the conformance suite starts real containers: run it as root")
    if not (ROOTFS / "bin" / "busybox").exists():
        pytest.skip(f"busybox rootfs missing at {ROOTFS}: run `make bundles`")
    spec = request.config.getoption("--runtime", default=None)
    runtime = Runtime(spec or os.environ.get("OCI_RUNTIME") or "pyoci")
    runtime.start()
    try:
        _probe_version(runtime, request)
        # For tests/conformance/report.py (the -p plugin of `make conformance`).
        request.config.oci_conformance_runtime = {
            "name": runtime.name,
            "path": runtime.path,
            "version": runtime.version,
            "ociVersion": runtime.oci_version,
            "notes": runtime.notes,
        }
        yield runtime
    finally:
        runtime.stop()
        drop_pristine()
        for mp in [*set(v1_controllers().values()), unified_root()]:
            if mp is not None:
                remove_cgroup_tree(mp / CGROUP_PREFIX)


def _probe_version(runtime: Runtime, request: pytest.FixtureRequest) -> None:
    """Use ociVersion 1.3.0 unless the runtime refuses it and accepts 1.0.2 (crun 1.8)."""
    lab = Lab(runtime, None, request)
    try:
        for version in (SPEC_VERSION, FALLBACK_VERSION):
            runtime.oci_version = version
            result = lab.run(lab.bundle(lab.config()))
            if result.ok and lab.saw_token(result.stdout):
                if version != SPEC_VERSION:
                    runtime.notes.append(
                        f"refuses ociVersion {SPEC_VERSION}: the bundles say {version}"
                    )
                return
        runtime.oci_version = SPEC_VERSION
    finally:
        lab.cleanup()


@pytest.fixture(scope="session")
def probe_binary() -> Iterator[Path | None]:
    """tests/conformance/probe.c built static with gcc (None if that fails), in a 0755
    directory a mapped uid can reach (user namespace tests bind-mount it)."""
    out = Path(tempfile.mkdtemp(prefix="ocitest-probe-"))
    out.chmod(0o755)
    binary = out / "probe"
    done = subprocess.run(
        ["gcc", "-static", "-O2", "-Wall", "-o", str(binary), str(PROBE_SOURCE)],
        capture_output=True,
        check=False,
    )
    try:
        yield binary if done.returncode == 0 else None
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def lab(oci_runtime: Runtime, probe_binary: Path | None, request: pytest.FixtureRequest):
    failed_before = request.session.testsfailed
    the_lab = Lab(oci_runtime, probe_binary, request)
    try:
        yield the_lab
    finally:
        the_lab.cleanup()
    failed = request.session.testsfailed > failed_before
    if not failed and not the_lab.skipped and not the_lab.token_seen:
        pytest.fail("the test never saw its container's process run (no token): not a pass")

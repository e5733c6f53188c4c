"""maskedPaths must not be redirected (runc CVE-2025-31133 / CVE-2025-52881 class).

A masked file is hidden by bind-mounting /dev/null over it. Done by *path* after the pivot,
"/dev/null" is whatever the container's /dev holds: with /dev bind-mounted from a directory the
container's owner controls, `null -> /proc/sys/kernel/hostname` turns the mask into a WRITABLE
bind of that sysctl, so writing to the masked /proc/keys changes the hostname. The container has
its own uts namespace here, so only its own hostname is ever at stake (never a host-global
sysctl). A fixed runtime refuses the container with a clear one-line error, or masks with
something that is not a writable sysctl (the write fails and the hostname stays).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from attack import pyoci_bin, runtime_is_pyoci  # noqa: F401

HOSTNAME = "pyoci"
TOKEN = "pwned-by-mask"
ATTACK = (
    f"echo {TOKEN} > /proc/keys; echo write-rc=$?; "
    "echo hostname=$(cat /proc/sys/kernel/hostname); "
    "echo mask-line=$(grep ' /proc/keys ' /proc/self/mountinfo | head -n 1)"
)
DEV_SUBMOUNTS = ("/dev/pts", "/dev/shm", "/dev/mqueue")


def _bind_dev(dev_dir: Path, readonly_paths: bool):
    """/dev bind-mounted from `dev_dir` (no tmpfs, no submounts); a new uts namespace (checked:
    the attack must only ever reach the container's own hostname)."""

    def patch(config: dict) -> None:
        mounts = [m for m in config["mounts"] if m["destination"] not in DEV_SUBMOUNTS]
        for m in mounts:
            if m["destination"] == "/dev":
                m.clear()
                m.update(
                    destination="/dev", type="bind", source=str(dev_dir), options=["rbind", "rw"]
                )
        config["mounts"] = mounts
        config["hostname"] = HOSTNAME
        assert {"type": "uts"} in config["linux"]["namespaces"]
        assert "/proc/keys" in config["linux"]["maskedPaths"]
        if not readonly_paths:
            config["linux"]["readonlyPaths"] = []

    return patch


def _dev_dir(tmp_path: Path, name: str, null_target: str | None) -> Path:
    """A /dev for the container: `null` is a symlink to `null_target`, or (None) the real
    character device 1:3."""
    dev = tmp_path / name
    dev.mkdir()
    if null_target is None:
        os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(dev / "null", 0o666)
    else:
        os.symlink(null_target, dev / "null")
    return dev


def _tokens(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


@pytest.mark.parametrize(
    "readonly_paths", [True, False], ids=["readonlyPaths-default", "readonlyPaths-none"]
)
def test_masked_path_through_symlinked_dev_null(pyoci, bundle, new_id, tmp_path, readonly_paths):
    # Control: the same bundle shape with a real /dev/null runs and masks /proc/keys.
    control_dev = _dev_dir(tmp_path, "dev-real", None)
    b = bundle(ATTACK, private=True, patch=_bind_dev(control_dev, readonly_paths))
    control = pyoci.run(b, new_id())
    tokens = _tokens(control.stdout)
    assert tokens.get("hostname") == HOSTNAME, f"control:\n{control.stdout}\n{control.stderr}"
    assert tokens.get("write-rc") == "0", control.stdout  # /dev/null swallows it

    if not readonly_paths and not runtime_is_pyoci():
        pytest.skip(
            "runc 1.1.5 binds /dev/null by path after the pivot (CVE-2025-31133): without a "
            "read-only /proc/sys the mask is a writable bind of the sysctl"
        )
    dev = _dev_dir(tmp_path, "dev-evil", "/proc/sys/kernel/hostname")
    b = bundle(ATTACK, private=True, patch=_bind_dev(dev, readonly_paths))
    result = pyoci.run(b, new_id())
    tokens = _tokens(result.stdout)
    if "hostname" not in tokens:
        # Refused: a clear one-line error naming the masked path or /dev/null, nothing printed
        # by the container.
        assert result.returncode != 0
        assert not result.stdout, result.stdout
        lines = result.stderr.strip().splitlines()
        if runtime_is_pyoci():
            assert len(lines) == 1 and lines[0].startswith("pyoci: "), result.stderr
        assert "/dev/null" in result.stderr or "maskedPaths" in result.stderr, result.stderr
        return
    assert tokens["hostname"] == HOSTNAME, (
        f"writing to the masked /proc/keys changed the hostname to {tokens['hostname']!r}: the "
        f"mask is a bind of /proc/sys/kernel/hostname ({tokens.get('mask-line')})"
    )
    assert tokens.get("write-rc") != "0", result.stdout


# --- guards: what masking and sysctl must keep doing --------------------------------------------
def test_sysctl_still_written(pyoci, bundle, new_id):
    """linux.sysctl (namespaced keys only) lands in the container's /proc/sys, which is then
    read-only (readonlyPaths)."""

    def patch(config: dict) -> None:
        config["linux"]["sysctl"] = {
            "net.ipv4.ip_forward": "1",
            "kernel.shm_rmid_forced": "1",
            "kernel.domainname": "sysctl.example",
        }

    script = (
        "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); "
        "echo shm=$(cat /proc/sys/kernel/shm_rmid_forced); "
        "echo dom=$(cat /proc/sys/kernel/domainname); "
        "echo 0 > /proc/sys/net/ipv4/ip_forward; echo rewrite-rc=$?"
    )
    result = pyoci.run(bundle(script, patch=patch), new_id())
    assert result.returncode == 0, result.stderr
    tokens = _tokens(result.stdout)
    assert tokens.get("fwd") == "1", result.stdout
    assert tokens.get("shm") == "1", result.stdout
    assert tokens.get("dom") == "sysctl.example", result.stdout
    assert tokens.get("rewrite-rc") not in (None, "0"), result.stdout


def test_masked_directory_is_an_empty_readonly_tmpfs(pyoci, bundle, new_id):
    def patch(config: dict) -> None:
        config["linux"]["maskedPaths"].append("/secret")

    script = (
        "echo listing=$(ls -A /secret | wc -l); "
        "touch /secret/x; echo touch-rc=$?; "
        "echo mask-line=$(grep ' /secret ' /proc/self/mountinfo | tail -n 1)"
    )
    b = bundle(script, private=True, patch=patch)
    (b.rootfs / "secret").mkdir()
    (b.rootfs / "secret" / "key").write_text("hidden\n")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    tokens = _tokens(result.stdout)
    assert tokens.get("listing") == "0", result.stdout
    assert tokens.get("touch-rc") not in (None, "0"), result.stdout
    fields = tokens.get("mask-line", "").split()
    assert fields, f"/secret is not a mount point:\n{result.stdout}"
    sep = fields.index("-")
    assert fields[sep + 1] == "tmpfs", fields
    assert "ro" in fields[5].split(","), f"the mask is not read-only: {fields}"

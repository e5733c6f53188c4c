"""runtime-spec 1.3.0, config-linux.md: namespaces, user namespace mappings, devices, cgroups and
their resources, sysctl, seccomp, rootfs propagation, masked and read-only paths, personality,
time offsets, memory policy, network devices, Intel RDT and the mount label.

As in test_oci_config.py, a property whose definition has no MUST of its own is checked under
runtime.md's "All of the properties configured in config.json except for process MUST be
applied", and its docstring says MUST.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import json
import os
import re
import socket
import threading
from pathlib import Path

import pytest
from oci_conformance import (
    CGROUP_PREFIX,
    NAMESPACES,
    NS_FILE,
    Lab,
    kv,
    proc_cgroups,
    unified_controllers,
    unified_root,
    v1_controllers,
)

# The fixtures (lab, oci_runtime, probe_binary) live in the harness.
pytest_plugins = ["oci_fixtures"]

SLEEP = "exec sleep 60"


def ns_script() -> str:
    return " ".join(f'echo "NS_{f}=$(readlink /proc/self/ns/{f})";' for f in NS_FILE.values())


# --- Default filesystems -------------------------------------------------------------------------
def test_default_filesystems(lab):
    """config-linux.md § Default Filesystems (SHOULD): "The following filesystems SHOULD be made
    available in each container's filesystem: /proc proc, /sys sysfs, /dev/pts devpts, /dev/shm
    tmpfs" """
    got = lab.run_ok(lab.config("cat /proc/self/mountinfo"))
    types = {}
    for line in got["_out"].splitlines():
        left, sep, right = line.partition(" - ")
        if sep and len(left.split()) > 4:
            types[left.split()[4]] = right.split()[0]
    want = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}
    seen = {p: types.get(p) for p in want}
    assert seen == want, f"observed {seen}"


# --- Namespaces ----------------------------------------------------------------------------------
def _ns_config(lab: Lab, kind: str) -> dict:
    cfg = lab.config(ns_script())
    names = {n["type"] for n in cfg["linux"]["namespaces"]}
    if kind not in names:
        cfg["linux"]["namespaces"].append({"type": kind})
    if kind == "user":
        lab.userns(cfg)
        cfg["linux"]["namespaces"] = [
            n for n in cfg["linux"]["namespaces"] if n["type"] != "user"
        ] + [{"type": "user"}]
    if kind == "time":
        cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 1, "nanosecs": 0}}
    return cfg


@pytest.mark.parametrize("kind", NAMESPACES)
def test_namespace_type_supported(lab, kind):
    """config-linux.md § Namespaces (SHOULD): "type (string, REQUIRED) - namespace type. The
        following
    namespace types SHOULD be supported: pid, network, mount, ipc, uts, user, cgroup, time"

    A container with a new namespace of this type runs in one (not the runtime's)."""
    got = lab.run_ok(_ns_config(lab, kind))
    f = NS_FILE[kind]
    seen = got.get(f"NS_{f}")
    assert seen and seen != lab.runtime.ns(f), (
        f"{kind}: the container's namespace is {seen!r}, the runtime's"
    )


def test_namespace_new_without_path(lab):
    """config-linux.md § Namespaces (MUST): "If path is not specified, the runtime MUST create a new
    container namespace of type type."

    pid, network, ipc, uts, mount and cgroup without path: all new."""
    cfg = lab.config(ns_script())
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    got = lab.run_ok(cfg)
    shared = [
        k
        for k in ("pid", "net", "ipc", "uts", "mnt", "cgroup")
        if got.get(f"NS_{k}") == lab.runtime.ns(k)
    ]
    assert not shared, f"shared with the runtime: {shared}"


def _holder(lab: Lab) -> int:
    """A host process in new network, uts and ipc namespaces (ours, killed at teardown)."""
    proc = lab.helper(
        ["unshare", "--net", "--uts", "--ipc", "sh", "-c", "echo ready; exec sleep 600"]
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc.pid


def test_namespace_path_joined(lab):
    """config-linux.md § Namespaces (MUST): "The runtime MUST place the container process in the
    namespace associated with that path."

    network, uts and ipc given by /proc/PID/ns/* of a process in new namespaces."""
    pid = _holder(lab)
    cfg = lab.config(ns_script())
    for n in cfg["linux"]["namespaces"]:
        if n["type"] in ("network", "uts", "ipc"):
            n["path"] = f"/proc/{pid}/ns/{NS_FILE[n['type']]}"
    got = lab.run_ok(cfg)
    want = {k: os.readlink(f"/proc/{pid}/ns/{k}") for k in ("net", "uts", "ipc")}
    seen = {k: got.get(f"NS_{k}") for k in want}
    assert seen == want, f"container {seen}, given {want}"


def test_namespace_path_wrong_type(lab):
    """config-linux.md § Namespaces (MUST): "The runtime MUST generate an error if path is not
    associated with a namespace of type type."

    type network with the path of a uts namespace."""
    pid = _holder(lab)
    cfg = lab.config()
    lab.control(cfg)
    for n in cfg["linux"]["namespaces"]:
        if n["type"] == "network":
            n["path"] = f"/proc/{pid}/ns/uts"
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "a uts namespace was accepted as the network namespace"
    assert lab.token_line not in result.stdout


def test_namespace_inherited(lab):
    """config-linux.md § Namespaces (MUST): "If a namespace type is not specified in the namespaces
    array, the container MUST inherit the runtime namespace of that type."

    No network, ipc and uts entries (and no hostname): the container shares the runtime's."""
    cfg = lab.config(ns_script())
    cfg["linux"]["namespaces"] = [
        n for n in cfg["linux"]["namespaces"] if n["type"] in ("pid", "mount")
    ]
    del cfg["hostname"]
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in ("/sys", "/dev/mqueue")]
    got = lab.run_ok(cfg)
    seen = {k: got.get(f"NS_{k}") for k in ("net", "ipc", "uts")}
    want = {k: lab.runtime.ns(k) for k in seen}
    assert seen == want, f"container {seen}, runtime {want}"


def test_namespace_duplicate(lab):
    """config-linux.md § Namespaces (MUST): "If a namespaces field contains duplicated namespaces
        with
    same type, the runtime MUST generate an error." """
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["namespaces"].append({"type": "ipc"})
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "two ipc entries were accepted"


# --- User namespace mappings ---------------------------------------------------------------------
def test_user_namespace_mappings(lab):
    """config-linux.md § User namespace mappings (MUST): "uidMappings (array of objects, OPTIONAL)
    describes the user namespace uid mappings from the host to the container. gidMappings ..."

    /proc/self/uid_map and gid_map inside show the configured ranges."""
    cfg = lab.userns(
        lab.config(
            "echo UID_MAP=$(cat /proc/self/uid_map); echo GID_MAP=$(cat /proc/self/gid_map)"
        ),
        200000,
        70000,
    )
    got = lab.run_ok(cfg)
    seen = (" ".join(got.get("UID_MAP", "").split()), " ".join(got.get("GID_MAP", "").split()))
    assert seen == ("0 200000 70000", "0 200000 70000"), f"observed {seen}"


def test_user_namespace_no_chown(lab):
    """config-linux.md § User namespace mappings (SHOULD NOT): "The runtime SHOULD NOT modify the
    ownership of referenced filesystems to realize the mapping."

    After a container with uids mapped to 100000+, the rootfs is still owned by host root."""
    cfg = lab.userns(lab.config("id -u"))
    bundle = lab.bundle(cfg)
    result = lab.run(bundle)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    changed = [
        p
        for p in ("", "bin/busybox", "etc/passwd", "tmp")
        if os.lstat(bundle / "rootfs" / p).st_uid != 0
    ]
    assert not changed, f"the runtime chowned {changed}"


# --- Offset for Time Namespace -------------------------------------------------------------------
def test_time_offsets(lab):
    """config-linux.md § Offset for Time Namespace (MUST): "timeOffsets (object, OPTIONAL) sets the
    offset for Time Namespace."

    boottime +1,000,000 s: /proc/uptime inside is past it."""
    cfg = lab.config("echo UPTIME=$(cut -d. -f1 /proc/uptime)")
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0}}
    got = lab.run_ok(cfg)
    host = float(Path("/proc/uptime").read_text().split()[0])
    assert int(got.get("UPTIME", "0")) >= 1000000 + host - 5, (
        f"uptime inside {got.get('UPTIME')}, host {host:.0f}"
    )


# --- Devices -------------------------------------------------------------------------------------
DEVICE_KINDS = {
    "c": ("character special file", 1, 3),
    "u": ("character special file", 1, 3),
    "b": ("block special file", 7, 250),
    "p": ("fifo", 0, 0),
}


@pytest.mark.parametrize("kind", sorted(DEVICE_KINDS))
def test_devices_available(lab, kind):
    """config-linux.md § Devices (MUST): "devices (array of objects, OPTIONAL) lists devices that
        MUST
    be available in the container."

    One device of this type (c, u: 1:3; b: 7:250; p: a fifo) at /dev/ocitest-dev."""
    label, major, minor = DEVICE_KINDS[kind]
    cfg = lab.config("echo DEV=$(stat -c '%F|%t:%T' /dev/ocitest-dev)")
    dev = {"path": "/dev/ocitest-dev", "type": kind}
    if kind != "p":
        dev.update(major=major, minor=minor)
    cfg["linux"]["devices"] = [dev]
    got = lab.run_ok(cfg)
    want = f"{label}|{major:x}:{minor:x}" if kind != "p" else f"{label}|0:0"
    assert got.get("DEV") == want, f"observed {got.get('DEV')!r}, wanted {want!r}"


def test_devices_mode_owner(lab):
    """config-linux.md § Devices (MUST): "fileMode (uint32, OPTIONAL) - file mode for the device.
        ...
    uid (uint32, OPTIONAL) - id of device owner in the container namespace. gid ..." """
    cfg = lab.config("echo DEV=$(stat -c '%a %u %g' /dev/ocitest-dev)")
    cfg["linux"]["devices"] = [
        {
            "path": "/dev/ocitest-dev",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o640,
            "uid": 1000,
            "gid": 100,
        }
    ]
    assert lab.run_ok(cfg).get("DEV") == "640 1000 100"


def test_devices_existing_file(lab):
    """config-linux.md § Devices (MUST): "path (string, REQUIRED) - full path to device inside
    container. If a file already exists at path that does not match the requested device, the
    runtime MUST generate an error."

    A regular file /ocitest-file in the rootfs, and a character device asked at that path."""
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["devices"] = [{"path": "/ocitest-file", "type": "c", "major": 1, "minor": 3}]
    bundle = lab.bundle(cfg)
    (bundle / "rootfs" / "ocitest-file").write_text("not a device")
    result = lab.run(bundle)
    assert not result.ok, "a device was accepted over an existing regular file"


def test_default_devices(lab):
    """config-linux.md § Default Devices (MUST): "In addition to any devices configured with this
    setting, the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random,
    /dev/urandom, /dev/tty" """
    names = ("null", "zero", "full", "random", "urandom", "tty")
    script = " ".join(f"echo DEV_{n}=$(stat -L -c '%F|%t:%T' /dev/{n});" for n in names)
    got = lab.run_ok(lab.config(script))
    want = {
        "null": (1, 3),
        "zero": (1, 5),
        "full": (1, 7),
        "random": (1, 8),
        "urandom": (1, 9),
        "tty": (5, 0),
    }
    wrong = {
        n: got.get(f"DEV_{n}")
        for n, (a, b) in want.items()
        if got.get(f"DEV_{n}") != f"character special file|{a:x}:{b:x}"
    }
    assert not wrong, f"wrong or missing: {wrong}"


def test_default_device_ptmx(lab):
    """config-linux.md § Default Devices (MUST): "/dev/ptmx. A bind-mount or symlink of the
    container's ptmx."

    /dev/ptmx is /dev/pts/ptmx (same inode), the devpts instance of the container."""
    script = "echo PTMX=$(stat -L -c '%d:%i' /dev/ptmx); echo PTS=$(stat -c '%d:%i' /dev/pts/ptmx)"
    got = lab.run_ok(lab.config(script))
    assert got.get("PTMX") and got.get("PTMX") == got.get("PTS"), (
        f"/dev/ptmx {got.get('PTMX')}, pts {got.get('PTS')}"
    )


def test_default_device_console(lab):
    """config-linux.md § Default Devices (MUST): "/dev/console is set up if terminal is enabled in
        the
    config by bind mounting the pseudoterminal pty to /dev/console."

    terminal true with a console socket: /dev/console is the container's pty (a pts device, the
    same as its stdin)."""
    sock, console = lab.console_socket()
    cfg = lab.config(
        "echo CONSOLE=$(stat -c '%t:%T' /dev/console) STDIN=$(stat -L -c '%t:%T' /proc/self/fd/0)"
    )
    cfg["process"]["terminal"] = True
    cid = lab.create(lab.bundle(cfg), None, "--console-socket", str(sock))
    lab.start(cid)
    console["thread"].join(15)
    lab.wait_status(cid, "stopped")
    text = console["output"].decode(errors="replace").replace("\r", "")
    assert console["error"] is None, console["error"]
    lab.expect_token(text)
    line = [ln for ln in text.splitlines() if ln.startswith("CONSOLE=")]
    assert line, f"no output: {text!r}"
    got = dict(part.split("=", 1) for part in line[0].split())
    assert got["CONSOLE"] == got["STDIN"] and got["CONSOLE"].startswith("88:"), f"observed {got}"


# --- Control groups ------------------------------------------------------------------------------
def test_cgroups_path_absolute(lab):
    """config-linux.md § Control groups (MUST): "In the case of an absolute path (starting with /),
    the runtime MUST take the path to be relative to the cgroups mount point."

    The container's memory (or cgroup2) group is cgroupsPath, under /sys/fs/cgroup."""
    cfg = lab.config(SLEEP)
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    groups = proc_cgroups(pid)
    want = cfg["linux"]["cgroupsPath"]
    key = "memory" if "memory" in groups else ""
    mount = v1_controllers().get("memory") if key else unified_root()
    lab.start(cid)
    lab.wait_token(cid)
    assert groups.get(key) == want, (
        f"{key or 'cgroup2'} group {groups.get(key)!r}, cgroupsPath {want}"
    )
    assert mount is not None and (mount / want.lstrip("/") / "cgroup.procs").exists()


def test_cgroups_path_consistent(lab):
    """config-linux.md § Control groups (MUST): "If the value is specified, the runtime MUST
    consistently attach to the same place in the cgroups hierarchy given the same value of
    cgroupsPath."

    Two containers, one after the other, with the same relative cgroupsPath."""
    rel = f"{CGROUP_PREFIX}/rel-{lab.mark[:8]}"
    seen = []
    for _ in range(2):
        cfg = lab.config(SLEEP)
        cfg["linux"]["cgroupsPath"] = rel
        cid = lab.create(lab.bundle(cfg))
        groups = proc_cgroups(lab.state(cid)["pid"])
        seen.append(groups.get("memory", groups.get("")))
        for p in {g for g in groups.values() if CGROUP_PREFIX in g}:
            lab.cgroup_paths.append(p)
        lab.start(cid)
        lab.wait_token(cid)
        lab.kill(cid, "KILL")
        lab.wait_status(cid, "stopped")
        lab.delete(cid)
    assert seen[0] == seen[1] and seen[0] and rel in seen[0], f"attached at {seen}"


def _ownership_run(lab: Lab, *, cgroupns: bool, rw_mount: bool) -> tuple[dict[str, Path], bool]:
    """A container with a user namespace (root -> 100000); returns its cgroup directories (seen
        while
    it is created) and whether it ran."""
    cfg = lab.userns(lab.config(SLEEP))
    if cgroupns:
        cfg["linux"]["namespaces"].append({"type": "cgroup"})
    if rw_mount:
        cfg["mounts"].append(
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "rw"],
            }
        )
    cid = lab.create(lab.bundle(cfg))
    dirs = {k: d for k, d in lab.cgroup_dirs(cfg["linux"]["cgroupsPath"]).items() if d.is_dir()}
    owners = {
        k: (d, d.stat().st_uid, {f.name: f.stat().st_uid for f in d.iterdir() if f.is_file()})
        for k, d in dirs.items()
    }
    lab.start(cid)
    lab.wait_token(cid)
    return owners, True


def test_cgroup_ownership_v1(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD NOT): "Runtimes SHOULD NOT change
    the ownership of container cgroups when cgroups v1 is in use."

    A user namespace, a new cgroup namespace and a read-write cgroup mount: the v1 directories
    keep their owner."""
    if not v1_controllers():
        lab.skip("cgroups v1 is not in use on this host")
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=True)
    changed = [
        k
        for k, (_, uid, files) in owners.items()
        if k != "unified" and (uid != 0 or any(files.values()))
    ]
    assert not changed, f"v1 cgroups chowned: {changed}"


def test_cgroup_ownership_needs_cgroupns(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD NOT): "A runtime SHOULD NOT
        change
    the ownership of a container cgroup unless it will also create a new cgroup namespace for the
    container."

    A user namespace, no cgroup namespace: no cgroup directory changes owner."""
    owners, _ = _ownership_run(lab, cgroupns=False, rw_mount=True)
    changed = [k for k, (_, uid, files) in owners.items() if uid != 0 or any(files.values())]
    assert not changed, f"chowned without a cgroup namespace: {changed}"


def test_cgroup_ownership_needs_rw_mount(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD NOT): "If the configuration does
    not specify such a mount, the runtime SHOULD NOT change the cgroup ownership."

    A user namespace and a cgroup namespace but no read-write /sys/fs/cgroup mount."""
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=False)
    changed = [k for k, (_, uid, files) in owners.items() if uid != 0 or any(files.values())]
    assert not changed, f"chowned without a read-write cgroup mount: {changed}"


def _delegate_files() -> list[str]:
    path = Path("/sys/kernel/cgroup/delegate")
    if path.exists():
        return path.read_text().split()
    return ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]


def test_cgroup_ownership_only_delegated_files(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD): "A runtime which changes the
    cgroup ownership SHOULD only change the ownership of the container's cgroup directory and files
    within that directory that are listed in /sys/kernel/cgroup/delegate." """
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=True)
    changed = {k: v for k, v in owners.items() if v[1] != 0}
    if not changed:
        lab.skip(
            "the runtime did not change the owner of the container's cgroup: clause not exercised"
        )
    allowed = set(_delegate_files())
    extra = {
        k: sorted(n for n, uid in files.items() if uid != 0 and n not in allowed)
        for k, (_, _, files) in changed.items()
    }
    extra = {k: v for k, v in extra.items() if v}
    assert not extra, f"files chowned beyond the delegate list: {extra}"


def test_cgroup_ownership_missing_delegate_files(lab):
    """config-linux.md § Control groups / Cgroup ownership (MUST NOT): "Note that not all files
        listed
    in /sys/kernel/cgroup/delegate necessarily exist in every cgroup. Runtimes MUST NOT fail in this
    scenario"

    A user namespace, a cgroup namespace and a read-write cgroup mount, on a host whose
    container cgroup lacks some delegated files: the container runs."""
    allowed = _delegate_files()
    root = unified_root()
    if root is None:
        lab.skip("no cgroup2 hierarchy")
    if all((root / f).exists() for f in allowed) and set(unified_controllers()) >= {"memory"}:
        lab.skip("every delegated file exists here: the scenario cannot be built")
    _ownership_run(lab, cgroupns=True, rw_mount=True)


def test_cgroup_ownership_parent_untouched(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD NOT): "In particular, the runtime
    SHOULD NOT change the ownership of any files in the parent cgroup."

    The parent of cgroupsPath and its files keep their owner."""
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=True)
    changed = []
    for k, (d, _, _) in owners.items():
        parent = d.parent
        if parent.stat().st_uid != 0 or any(
            f.stat().st_uid != 0 for f in parent.iterdir() if f.is_file()
        ):
            changed.append(k)
    assert not changed, f"parent cgroup chowned in {changed}"


def test_cgroup_ownership_changed_with_rw_mount(lab):
    """config-linux.md § Control groups / Cgroup ownership (SHOULD): "Runtimes SHOULD change the
    cgroup ownership if and only if the cgroup filesystem is to be mounted read/write"

    cgroup2 only, a user namespace, a new cgroup namespace and a read-write /sys/fs/cgroup: the
    container's cgroup belongs to the mapped uid of process.user.uid."""
    if v1_controllers():
        lab.skip("cgroups v1 is in use on this host, where the spec says not to change ownership")
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=True)
    uid = owners.get("unified", (None, 0, {}))[1]
    assert uid == 100000, f"the container's cgroup2 directory is owned by {uid}"


def test_cgroup_ownership_delegate_fallback(lab):
    """config-linux.md § Control groups / Cgroup ownership (MUST): "If the
    /sys/kernel/cgroup/delegate file does not exist, the runtime MUST fall back to using the
    following list of files: cgroup.procs, cgroup.subtree_control, cgroup.threads" """
    if Path("/sys/kernel/cgroup/delegate").exists():
        lab.skip("this kernel has /sys/kernel/cgroup/delegate: the fallback cannot be exercised")
    owners, _ = _ownership_run(lab, cgroupns=True, rw_mount=True)
    changed = {k: v for k, v in owners.items() if v[1] != 0}
    if not changed:
        lab.skip("the runtime did not change the owner of the container's cgroup")
    fallback = {"cgroup.procs", "cgroup.subtree_control", "cgroup.threads"}
    extra = {
        k: sorted(n for n, u in v[2].items() if u != 0 and n not in fallback)
        for k, v in changed.items()
    }
    assert not any(extra.values()), f"files chowned beyond the fallback list: {extra}"


# --- Resources -----------------------------------------------------------------------------------
def _resource_value(
    lab: Lab,
    resources: dict,
    controller: str,
    v1_name: str,
    v2_name: str,
    cgroups_path: str | None = None,
) -> str:
    cfg = lab.config(SLEEP)
    cfg["linux"]["resources"] = resources
    if cgroups_path:
        cfg["linux"]["cgroupsPath"] = cgroups_path
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    path = lab.cgroup_file(pid, controller, v1_name, v2_name)
    value = path.read_text().strip() if path.exists() else f"<{path} missing>"
    lab.start(cid)
    lab.wait_token(cid)
    return value


MIB = 1024 * 1024
RESOURCES = {
    # id: (resources, controller, v1 file, v2 file, expected v1, expected v2)
    "memory.limit": (
        {"memory": {"limit": 64 * MIB}},
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
        str(64 * MIB),
        str(64 * MIB),
    ),
    "memory.reservation": (
        {"memory": {"reservation": 32 * MIB}},
        "memory",
        "memory.soft_limit_in_bytes",
        "memory.low",
        str(32 * MIB),
        str(32 * MIB),
    ),
    "memory.swap": (
        {"memory": {"limit": 64 * MIB, "swap": 96 * MIB}},
        "memory",
        "memory.memsw.limit_in_bytes",
        "memory.swap.max",
        str(96 * MIB),
        str(32 * MIB),
    ),
    "memory.swappiness": (
        {"memory": {"swappiness": 17}},
        "memory",
        "memory.swappiness",
        "memory.swappiness",
        "17",
        "17",
    ),
    "memory.disableOOMKiller": (
        {"memory": {"disableOOMKiller": True}},
        "memory",
        "memory.oom_control",
        "memory.oom.group",
        "oom_kill_disable 1",
        "?",
    ),
    "cpu.shares": ({"cpu": {"shares": 512}}, "cpu", "cpu.shares", "cpu.weight", "512", "20"),
    "cpu.quota": (
        {"cpu": {"quota": 50000, "period": 100000}},
        "cpu",
        "cpu.cfs_quota_us",
        "cpu.max",
        "50000",
        "50000 100000",
    ),
    "cpu.period": (
        {"cpu": {"quota": 50000, "period": 200000}},
        "cpu",
        "cpu.cfs_period_us",
        "cpu.max",
        "200000",
        "50000 200000",
    ),
    "cpu.burst": (
        {"cpu": {"quota": 50000, "period": 100000, "burst": 10000}},
        "cpu",
        "cpu.cfs_burst_us",
        "cpu.max.burst",
        "10000",
        "10000",
    ),
    "cpu.idle": ({"cpu": {"idle": 1}}, "cpu", "cpu.idle", "cpu.idle", "1", "1"),
    "cpu.cpus": ({"cpu": {"cpus": "0"}}, "cpuset", "cpuset.cpus", "cpuset.cpus", "0", "0"),
    "cpu.mems": ({"cpu": {"mems": "0"}}, "cpuset", "cpuset.mems", "cpuset.mems", "0", "0"),
    "pids.limit": ({"pids": {"limit": 77}}, "pids", "pids.max", "pids.max", "77", "77"),
    "hugepageLimits": (
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]},
        "hugetlb",
        "hugetlb.2MB.limit_in_bytes",
        "hugetlb.2MB.max",
        str(4 * MIB),
        str(4 * MIB),
    ),
}


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_resources(lab, name):
    """config-linux.md § Control groups / Resources (MUST): "You can configure a container's cgroups
    via the resources field of the Linux configuration." (memory, cpu, pids, hugepageLimits: each
    setting lands in its cgroup file)"""
    resources, controller, v1, v2, want1, want2 = RESOURCES[name]
    applied = f"linux.resources.{name} {json.dumps(resources)} is applied to the container's cgroup"
    lab.clause(quote=f'"resources" — {applied}')
    cpu_v1 = v1_controllers().get("cpu")
    if name in ("cpu.idle", "cpu.burst") and cpu_v1 is not None and not (cpu_v1 / v1).exists():
        lab.skip(f"this kernel's cpu controller has no {v1}")
    if (
        name == "memory.swap"
        and "memory" in v1_controllers()
        and not (v1_controllers()["memory"] / v1).exists()
    ):
        lab.skip("swap accounting is off on this host")
    value = _resource_value(lab, resources, controller, v1, v2)
    want = want1 if controller in v1_controllers() else want2
    ok = want in value.splitlines() if name == "memory.disableOOMKiller" else value == want
    assert ok, f"{name}: the cgroup file says {value!r}, wanted {want!r}"


def test_resources_realtime(lab):
    """config-linux.md § Control groups / Resources (MUST): "realtimeRuntime (int64, OPTIONAL) -
    specifies a period of time in microseconds for the longest continuous period in which the tasks
    in a cgroup have access to CPU resources. realtimePeriod ..."

    A cgroup directly under the root (which holds the host's realtime budget)."""
    cpu = v1_controllers().get("cpu")
    if cpu is None or not (cpu / "cpu.rt_runtime_us").exists():
        lab.skip("no cgroup v1 cpu controller with realtime group scheduling on this host")
    value = _resource_value(
        lab,
        {"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}},
        "cpu",
        "cpu.rt_runtime_us",
        "cpu.rt_runtime_us",
        cgroups_path=f"/{CGROUP_PREFIX}-rt-{lab.mark[:8]}",
    )
    assert value == "10000", f"cpu.rt_runtime_us {value!r}"


def _block_device() -> tuple[int, int] | None:
    for line in Path("/proc/partitions").read_text().splitlines()[2:]:
        parts = line.split()
        if len(parts) == 4:
            return int(parts[0]), int(parts[1])
    return None


THROTTLES = {
    "throttleReadBpsDevice": "blkio.throttle.read_bps_device",
    "throttleWriteBpsDevice": "blkio.throttle.write_bps_device",
    "throttleReadIOPSDevice": "blkio.throttle.read_iops_device",
    "throttleWriteIOPSDevice": "blkio.throttle.write_iops_device",
}


@pytest.mark.parametrize("field", sorted(THROTTLES))
def test_resources_block_io_throttle(lab, field):
    """config-linux.md § Control groups / Block IO (MUST): "throttleReadBpsDevice,
    throttleWriteBpsDevice (array of objects, OPTIONAL) - specify the list of devices which will be
    bandwidth rate limited. throttleReadIOPSDevice, throttleWriteIOPSDevice (array of objects,
    OPTIONAL) - specify the list of devices which will be IO rate limited." """
    limited = "bandwidth rate limited" if "Bps" in field else "IO rate limited"
    lab.clause(quote=f'"{field} ... specify the list of devices which will be {limited}"')
    dev = _block_device()
    blkio = v1_controllers().get("blkio")
    if dev is None:
        lab.skip("no block device on this host")
    if blkio is None or not (blkio / THROTTLES[field]).exists():
        lab.skip("no cgroup v1 blkio throttling on this host")
    rate = 1048576 if "Bps" in field else 1000
    value = _resource_value(
        lab,
        {"blockIO": {field: [{"major": dev[0], "minor": dev[1], "rate": rate}]}},
        "blkio",
        THROTTLES[field],
        "io.max",
    )
    assert f"{dev[0]}:{dev[1]} {rate}" in value.splitlines(), f"{THROTTLES[field]}: {value!r}"


@pytest.mark.parametrize("field", ["weight", "leafWeight", "weightDevice"])
def test_resources_block_io_weight(lab, field):
    """config-linux.md § Control groups / Block IO (MUST): "weight (uint16, OPTIONAL) - per-cgroup
    weight. ... leafWeight ... weightDevice" """
    lab.clause(quote=f'"blockIO.{field}" is applied to the container\'s cgroup')
    blkio = v1_controllers().get("blkio")
    if blkio is None or not (blkio / "blkio.weight").exists():
        lab.skip("the blkio controller has no weight files here (no BFQ/CFQ I/O scheduler)")
    dev = _block_device()
    res = {
        "weight": {"weight": 300},
        "leafWeight": {"leafWeight": 300},
        "weightDevice": {"weightDevice": [{"major": dev[0], "minor": dev[1], "weight": 300}]}
        if dev
        else {},
    }[field]
    file = {
        "weight": "blkio.weight",
        "leafWeight": "blkio.leaf_weight",
        "weightDevice": "blkio.weight_device",
    }[field]
    value = _resource_value(lab, {"blockIO": res}, "blkio", file, "io.weight")
    assert "300" in value, f"{file}: {value!r}"


@pytest.mark.parametrize("field", ["classID", "priorities"])
def test_resources_network(lab, field):
    """config-linux.md § Control groups / Network (MUST): "classID (uint32, OPTIONAL) - is the
        network
    class identifier the cgroup's network packets will be tagged with. priorities (array of objects,
    OPTIONAL) - specifies a list of objects of the priorities assigned to traffic originating from
    processes in the group and egressing the system on various interfaces." """
    lab.clause(quote=f'"network.{field}" is applied to the container\'s cgroup')
    controller = "net_cls" if field == "classID" else "net_prio"
    mount = lab.need_v1(controller)
    res = (
        {"classID": 1048577}
        if field == "classID"
        else {"priorities": [{"name": "lo", "priority": 5}]}
    )
    file = "net_cls.classid" if field == "classID" else "net_prio.ifpriomap"
    value = _resource_value(lab, {"network": res}, controller, file, file)
    assert ("1048577" in value) if field == "classID" else ("lo 5" in value), f"{mount}: {value!r}"


def test_resources_rdma(lab):
    """config-linux.md § Control groups / RDMA (MUST): "rdma (object, OPTIONAL) represents the
    cgroup subsystem rdma." (applied as runtime.md's create requires)"""
    lab.need_v1("rdma")
    lab.skip("rdma resources need an RDMA device (none here)")


def test_devices_allowlist_order(lab):
    """config-linux.md § Control groups / Allowed Device List (MUST): "devices (array of objects,
    OPTIONAL) configures the allowed device list. The runtime MUST apply entries in the listed
    order."

    deny all; then allow and deny c 1:11 (kmsg) in one order or the other. Inside (CAP_MKNOD
    granted) the node is made and opened write-only (which needs no privilege): refused by the
    device cgroup (EPERM) after `allow, deny`, opened after `deny, allow`."""
    results = {}
    script = (
        "mknod /work/k c 1 11 2>&1 | sed 's/^/MKNOD=/'; "
        "if (: > /work/k) 2>/dev/null; then echo OPEN=ok; else echo OPEN=denied; fi"
    )
    for order in ("allow,deny", "deny,allow"):
        cfg = lab.config(script)
        for key in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][key].append("CAP_MKNOD")
        cfg["mounts"].append(
            {"destination": "/work", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
        )
        rule = {"type": "c", "major": 1, "minor": 11, "access": "rwm"}
        pair = [{"allow": True, **rule}, {"allow": False, **rule}]
        if order == "deny,allow":
            pair.reverse()
        cfg["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}, *pair]}
        got = lab.run_ok(cfg)
        results[order] = got.get("OPEN") + (f" (mknod: {got['MKNOD']})" if got.get("MKNOD") else "")
    assert results == {"allow,deny": "denied", "deny,allow": "ok"}, f"observed {results}"


def _unified(lab: Lab, unified: dict[str, str], files: list[str]) -> dict[str, str]:
    if unified_root() is None:
        lab.skip("no cgroup2 hierarchy on this host")
    cfg = lab.config(SLEEP)
    cfg["linux"]["resources"] = {"unified": unified}
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    group = proc_cgroups(pid).get("", "")
    base = unified_root() / group.lstrip("/")
    values = {
        f: ((base / f).read_text().strip() if (base / f).exists() else "<missing>") for f in files
    }
    values["_group"] = group
    lab.start(cid)
    lab.wait_token(cid)
    return values


def test_unified_controllers_enabled(lab):
    """config-linux.md § Control groups / Unified (MUST): "unified (object, OPTIONAL) allows cgroup
        v2
    parameters to be set and modified for the container. ... The OCI runtime MUST ensure that the
    needed cgroup controllers are enabled for the cgroup."

    hugetlb.2MB.max (a controller of the cgroup2 hierarchy here): written in the container's
    cgroup2 group."""
    ctrls = unified_controllers()
    if "hugetlb" not in ctrls and "pids" not in ctrls:
        lab.skip("neither hugetlb nor pids is a cgroup2 controller here")
    key, value = ("hugetlb.2MB.max", str(8 * MIB)) if "hugetlb" in ctrls else ("pids.max", "55")
    got = _unified(lab, {key: value}, [key])
    assert got[key] == value, (
        f"{key} in the container's cgroup2 group {got['_group']!r}: {got[key]!r}"
    )


def test_unified_unknown_written(lab):
    """config-linux.md § Control groups / Unified (MUST): "Configuration unknown to the runtime MUST
    still be written to the relevant file."

    cgroup.max.descendants (a core cgroup2 file no typed field maps to)."""
    got = _unified(lab, {"cgroup.max.descendants": "5"}, ["cgroup.max.descendants"])
    assert got["cgroup.max.descendants"] == "5", (
        f"cgroup.max.descendants in {got['_group']!r}: {got}"
    )


def test_unified_missing_controller(lab):
    """config-linux.md § Control groups / Unified (MUST): "The runtime MUST generate an error when
        the
    configuration refers to a cgroup controller that is not present or that cannot be enabled."

    A key of a controller this host's cgroup2 hierarchy does not have."""
    if unified_root() is None:
        lab.skip("no cgroup2 hierarchy on this host")
    absent = [
        c for c in ("pids", "io", "memory", "cpu", "rdma", "misc") if c not in unified_controllers()
    ]
    if not absent:
        lab.skip("every candidate controller is present in cgroup2 here")
    key = {
        "pids": "pids.max",
        "io": "io.weight",
        "memory": "memory.high",
        "cpu": "cpu.weight",
        "rdma": "rdma.max",
        "misc": "misc.max",
    }[absent[0]]
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["resources"] = {"unified": {key: "max" if absent[0] != "io" else "100"}}
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, (
        f"unified {key} accepted although {absent[0]} is not a cgroup2 controller here"
    )


# --- IntelRdt, sysctl ----------------------------------------------------------------------------
def test_intel_rdt(lab):
    """config-linux.md § IntelRdt (MUST): "intelRdt (object, OPTIONAL) represents the Intel Resource
    Director Technology." (closID, schemata, monitoring)"""
    if "resctrl" not in Path("/proc/filesystems").read_text():
        lab.skip("no resctrl filesystem in this kernel (no Intel RDT here)")
    if not any(m.split()[2] == "resctrl" for m in Path("/proc/mounts").read_text().splitlines()):
        lab.skip("resctrl is not mounted (no Intel RDT here)")
    lab.skip("Intel RDT hardware checks are not implemented on this host")


def test_sysctl(lab):
    """config-linux.md § Sysctl (MUST): "sysctl (object, OPTIONAL) allows kernel parameters to be
    modified at runtime for the container."

    net.ipv4.ip_forward (network namespace) and kernel.msgmax (ipc namespace)."""
    cfg = lab.config(
        "echo FWD=$(cat /proc/sys/net/ipv4/ip_forward) MSGMAX=$(cat /proc/sys/kernel/msgmax)"
    )
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4321"}
    line = [ln for ln in lab.run_ok(cfg)["_out"].splitlines() if ln.startswith("FWD=")]
    assert line == ["FWD=1 MSGMAX=4321"], f"observed {line}"


# --- Seccomp -------------------------------------------------------------------------------------
MKDIR = (
    "mkdir /tmp/ocitest-dir 2>&1 | sed 's/^/MKDIR=/'; "
    "[ -d /tmp/ocitest-dir ] && echo MKDIR=created; :"
)


def _seccomp(lab: Lab, seccomp: dict) -> dict[str, str]:
    cfg = lab.config(MKDIR)
    cfg["linux"]["seccomp"] = seccomp
    return lab.run_ok(cfg)


def test_seccomp_syscall_action(lab):
    """config-linux.md § Seccomp (MUST): "errnoRet (uint, OPTIONAL) - the errno return code to use.
    ... If not specified its default value is EPERM."

    mkdir and mkdirat with SCMP_ACT_ERRNO and no errnoRet: mkdir fails with EPERM."""
    got = _seccomp(
        lab,
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
        },
    )
    assert "Operation not permitted" in got.get("MKDIR", ""), f"mkdir said {got.get('MKDIR')!r}"


def test_seccomp_errno_ret(lab):
    """config-linux.md § Seccomp (MUST): "errnoRet (uint, OPTIONAL) - the errno return code to use.
    Some actions like SCMP_ACT_ERRNO and SCMP_ACT_TRACE allow to specify the errno code to return."

    errnoRet 95 (EOPNOTSUPP) for mkdir."""
    got = _seccomp(
        lab,
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}
            ],
        },
    )
    assert "not supported" in got.get("MKDIR", "").lower(), f"mkdir said {got.get('MKDIR')!r}"


def test_seccomp_errno_ret_unsupported_action(lab):
    """config-linux.md § Seccomp (MUST): "When the action doesn't support an errno, the runtime MUST
    print and error and fail."

    errnoRet on an SCMP_ACT_KILL rule."""
    cfg = lab.config(MKDIR)
    lab.control(cfg)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL", "errnoRet": 95}],
    }
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "errnoRet with SCMP_ACT_KILL was accepted"
    assert result.stderr.strip(), "the runtime failed without printing an error"


def _all_syscall_names() -> list[str]:
    """Every syscall libseccomp knows on this architecture (from the kernel headers' list)."""
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if not header.exists():
        header = Path("/usr/include/asm/unistd_64.h")
    names = re.findall(r"#define __NR_(\w+)\s+\d+", header.read_text()) if header.exists() else []
    lib = ctypes.util.find_library("seccomp")
    if not lib:
        return []
    seccomp = ctypes.CDLL(lib)
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return [n for n in names if seccomp.seccomp_syscall_resolve_name(n.encode()) >= 0]


def test_seccomp_default_errno_ret(lab):
    """config-linux.md § Seccomp (MUST): "defaultErrnoRet (uint, OPTIONAL) - the errno return code
        to
    use. Some actions like SCMP_ACT_ERRNO and SCMP_ACT_TRACE allow to specify the errno code to
    return."

    defaultAction SCMP_ACT_ERRNO with defaultErrnoRet 95; every syscall but mkdir/mkdirat
    allowed."""
    names = [n for n in _all_syscall_names() if n not in ("mkdir", "mkdirat")]
    if len(names) < 100:
        lab.skip("could not list this architecture's syscalls (kernel headers, libseccomp)")
    got = _seccomp(
        lab,
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 95,
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        },
    )
    assert "not supported" in got.get("MKDIR", "").lower(), f"mkdir said {got.get('MKDIR')!r}"


def test_seccomp_default_errno_ret_unsupported_action(lab):
    """config-linux.md § Seccomp (MUST): "defaultErrnoRet ... When the action doesn't support an
        errno,
    the runtime MUST print and error and fail."

    defaultErrnoRet with defaultAction SCMP_ACT_ALLOW."""
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 95}
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "defaultErrnoRet with SCMP_ACT_ALLOW was accepted"
    assert result.stderr.strip(), "the runtime failed without printing an error"


class Agent:
    """A seccomp agent: a SOCK_STREAM unix socket; records what each connection sends (payload,
    fds) and whether the runtime closed it afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.server.settimeout(20)
        self.connections: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        record: dict = {"data": b"", "fds": [], "closed": False, "messages": 0}
        self.connections.append(record)
        conn.settimeout(5)
        with conn:
            while True:
                try:
                    data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                except (TimeoutError, OSError):
                    break
                if not data and not anc:
                    record["closed"] = True
                    break
                record["messages"] += 1
                record["data"] += data
                for level, kind, cdata in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds = array.array("i")
                        fds.frombytes(cdata[: len(cdata) - len(cdata) % 4])
                        for fd in fds:
                            try:
                                record["fds"].append(os.readlink(f"/proc/self/fd/{fd}"))
                            finally:
                                os.close(fd)
        self.server.close()


def _notify(lab: Lab, metadata: str | None = "ocitest-metadata") -> tuple[Agent, str, dict]:
    agent = Agent(lab.dir / "agent.sock")
    cfg = lab.config()
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(agent.path),
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    if metadata is not None:
        cfg["linux"]["seccomp"]["listenerMetadata"] = metadata
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    lab.start(cid)
    lab.wait_token(cid)
    agent.thread.join(10)
    assert agent.connections, "the runtime never connected to the seccomp agent's socket"
    return agent, cid, {"pid": pid}


def _payload(agent: Agent) -> dict:
    try:
        return json.loads(agent.connections[0]["data"])
    except ValueError:
        pytest.fail(f"the agent got no JSON: {agent.connections[0]['data'][:200]!r}")


def test_seccomp_listener_socket(lab):
    """config-linux.md § Seccomp (MUST): "listenerPath ... This socket MUST use AF_UNIX domain and
    SOCK_STREAM type."

    The runtime connects to a SOCK_STREAM unix socket and sends the state there."""
    agent, _, _ = _notify(lab)
    assert agent.connections[0]["data"], "connected, but sent nothing"


def test_seccomp_listener_one_state(lab):
    """config-linux.md § Seccomp (MUST): "The runtime MUST send exactly one container process state
    per connection." """
    agent, _, _ = _notify(lab)
    decoder = json.JSONDecoder()
    text = agent.connections[0]["data"].decode(errors="replace").strip()
    objects = 0
    while text:
        try:
            _, end = decoder.raw_decode(text)
        except ValueError:
            pytest.fail(f"not JSON: {text[:200]!r}")
        objects += 1
        text = text[end:].strip()
    assert objects == 1 and len(agent.connections) == 1, (
        f"{objects} state(s) on {len(agent.connections)} connection(s)"
    )


def test_seccomp_listener_closed(lab):
    """config-linux.md § Seccomp (MUST): "The connection MUST NOT be reused and it MUST be closed
        after
    sending a seccomp state." """
    agent, _, _ = _notify(lab)
    assert agent.connections[0]["closed"], (
        "the runtime did not close the connection after the state"
    )


def test_seccomp_listener_payload(lab):
    """config-linux.md § Container Process State (MUST): "The container runtime MUST send the
        container
    process state over the UNIX socket as regular payload serialized in JSON and file descriptors
    MUST be sent using SCM_RIGHTS."

    JSON with ociVersion, fds ["seccompFd"], pid (the container's) and state; one fd, a seccomp
    notify fd."""
    agent, cid, info = _notify(lab)
    payload = _payload(agent)
    fds = agent.connections[0]["fds"]
    problems = []
    if payload.get("fds") != ["seccompFd"]:
        problems.append(f"fds {payload.get('fds')!r}")
    if payload.get("pid") != info["pid"]:
        problems.append(f"pid {payload.get('pid')!r} (container {info['pid']})")
    if (payload.get("state") or {}).get("id") != cid or "ociVersion" not in payload:
        problems.append(f"state {payload.get('state')!r}")
    if len(fds) != 1 or "seccomp" not in fds[0]:
        problems.append(f"SCM_RIGHTS fds {fds}")
    assert not problems, "; ".join(problems)


def test_seccomp_listener_metadata(lab):
    """config-linux.md § Seccomp (MUST): "listenerMetadata (string, OPTIONAL) - opaque data to pass
        to
    the seccomp agent. This string will be sent as the metadata field in the container process
    state." """
    agent, _, _ = _notify(lab, "ocitest metadata 42")
    assert _payload(agent).get("metadata") == "ocitest metadata 42"


def test_seccomp_listener_send_fails(lab):
    """config-linux.md § Seccomp (MUST): "If sending to this socket fails, the runtime MUST
        generate an
    error."

    listenerPath names a socket nobody listens on."""
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(lab.dir / "nobody.sock"),
        "syscalls": [{"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    cid = lab.create(lab.bundle(cfg), check=False)
    failed = not lab.last.ok or not lab.start(cid, check=False).ok
    assert failed, "no error although the seccomp agent's socket does not exist"


# --- Rootfs mount propagation --------------------------------------------------------------------
def _root_propagation(lab: Lab, value: str, shared_host: bool = False) -> str:
    if shared_host:
        # The rootfs copy sits on a mount of ours that is shared, so a slave can get a master.
        lab.host_mount("--bind", str(lab.dir), target=lab.dir)
        lab.host_run("mount", "--make-shared", str(lab.dir))
    cfg = lab.config("cat /proc/self/mountinfo")
    cfg["linux"]["rootfsPropagation"] = value
    got = lab.run_ok(cfg)
    root = [ln for ln in got["_out"].splitlines() if len(ln.split()) > 4 and ln.split()[4] == "/"]
    assert root, "no / in the container's mountinfo"
    left = root[-1].partition(" - ")[0].split()
    return " ".join(left[6:])


@pytest.mark.parametrize(
    "value,want",
    [("shared", "shared:"), ("slave", "master:"), ("private", ""), ("unbindable", "unbindable")],
)
def test_rootfs_propagation(lab, value, want):
    """config-linux.md § Rootfs Mount Propagation (MUST): "rootfsPropagation (string, OPTIONAL)
        sets the
    rootfs's mount propagation. Its value is either shared, slave, private or unbindable."

    The container's / shows it in mountinfo (slave: the rootfs's host mount made shared first)."""
    lab.clause(quote=f'"rootfsPropagation ... sets the rootfs\'s mount propagation" — `{value}`')
    fields = _root_propagation(lab, value, shared_host=value == "slave")
    if want:
        ok = want in fields
    else:
        ok = not any(t in fields for t in ("shared:", "master:", "unbindable"))
    assert ok, f"rootfsPropagation {value}: / has propagation fields {fields!r}"


# --- Masked and read-only paths ------------------------------------------------------------------
def test_masked_paths(lab):
    """config-linux.md § Masked Paths (MUST): "maskedPaths (array of strings, OPTIONAL) will mask
        over
    the provided paths inside the container so that they cannot be read."

    A file (/proc/kcore reads empty) and a directory (/sys/firmware lists nothing)."""
    cfg = lab.config(
        "echo KCORE=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)"
        " FW=$(ls -A /sys/firmware 2>/dev/null | wc -l)"
    )
    line = [ln for ln in lab.run_ok(cfg)["_out"].splitlines() if ln.startswith("KCORE=")]
    assert line == ["KCORE=0 FW=0"], f"observed {line}"


def test_readonly_paths(lab):
    """config-linux.md § Readonly Paths (MUST): "readonlyPaths (array of strings, OPTIONAL) will set
    the provided paths as readonly inside the container."

    /proc/sys and /proc/bus are read-only mounts inside."""
    got = lab.run_ok(lab.config("cat /proc/self/mountinfo"))
    ro = {}
    for line in got["_out"].splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] in ("/proc/sys", "/proc/bus"):
            ro[fields[4]] = "ro" in fields[5].split(",")
    assert ro == {"/proc/sys": True, "/proc/bus": True}, f"read-only: {ro}"


def test_mount_label(lab):
    """config-linux.md § Mount Label (MUST): "mountLabel (string, OPTIONAL) will set the Selinux
    context for the mounts in the container." """
    if not os.path.isdir("/sys/fs/selinux"):
        lab.skip("SELinux is not enabled on this host")
    lab.run_ok(lab.config())


# --- Personality, memory policy, network devices -------------------------------------------------
def test_personality(lab):
    """config-linux.md § Personality (MUST): "personality (object, OPTIONAL) sets the Linux
        execution
    personality. ... LINUX32 will set the uname system call to show a 32 bit CPU type, such as
    i686." """
    if os.uname().machine != "x86_64":
        lab.skip("the expected 32-bit name is only known here for x86_64")
    cfg = lab.config("echo MACHINE=$(uname -m)")
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    assert lab.run_ok(cfg).get("MACHINE") == "i686"


def test_memory_policy(lab):
    """config-linux.md § Memory Policy (MUST): "memoryPolicy (object, OPTIONAL) sets the NUMA memory
    policy for the container."

    MPOL_INTERLEAVE on node 0 (probe: get_mempolicy)."""
    cfg = lab.with_probe(lab.config("/ocitest/probe mempolicy"))
    cfg["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    got = lab.run_ok(cfg)
    assert (got.get("MPOL"), got.get("NODES")) == ("3", "1"), (
        f"observed mode {got.get('MPOL')}, nodes {got.get('NODES')}"
    )


def test_net_devices(lab):
    """config-linux.md § Network Devices (MUST): "netDevices (object, OPTIONAL) - set of network
        devices
    that MUST be made available in and under the control of the container."

    The runtime runs in a network namespace of the test's holding two veth pairs; the container
    gets one device under its name and one renamed (`name`)."""
    pid = _holder(lab)
    netns = f"/proc/{pid}/ns/net"
    for i in (0, 1):
        lab.host_run(
            "nsenter",
            f"--net={netns}",
            "ip",
            "link",
            "add",
            f"ocidev{i}",
            "type",
            "veth",
            "peer",
            "name",
            f"ocipeer{i}",
        )
    cfg = lab.config(
        "echo DEVS=$(cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort | tr '\\n' ,)"
    )
    cfg["linux"]["netDevices"] = {"ocidev0": {}, "ocidev1": {"name": "ocirenamed"}}
    result = lab.rt("run", "--bundle", str(lab.bundle(cfg)), lab.new_id(), netns=netns)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    devs = set(kv(result.stdout).get("DEVS", "").strip(",").split(","))
    assert {"ocidev0", "ocirenamed"} <= devs, f"network devices inside: {sorted(devs)}"

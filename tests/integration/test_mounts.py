"""The container's filesystem as seen from inside: mounts and their flags, /dev, masked and
read-only paths, a read-only root."""

from __future__ import annotations

import os

import pytest
from helpers import parse_mountinfo


def _mountinfo(pyoci, b, cid):
    result = pyoci.run(b, cid)
    assert result.returncode == 0, result.stderr
    return parse_mountinfo(result.stdout)


# mount point, filesystem type (None: any), per-mount options, super options that must be shown
CONFIG_MOUNTS = [
    ("/proc", "proc", set(), set()),
    ("/dev", "tmpfs", {"nosuid"}, {"mode=755", "size=65536k"}),
    ("/dev/pts", "devpts", {"nosuid", "noexec"}, {"gid=5", "mode=620", "ptmxmode=666"}),
    ("/dev/shm", "tmpfs", {"nosuid", "nodev", "noexec"}, {"size=65536k"}),
    ("/dev/mqueue", "mqueue", {"nosuid", "nodev", "noexec"}, set()),
    ("/sys", "sysfs", {"ro", "nosuid", "nodev", "noexec"}, set()),
    ("/sys/fs/cgroup", None, {"ro", "nosuid", "nodev", "noexec"}, set()),
]


@pytest.mark.parametrize(
    "mount_point,fstype,options,super_options", CONFIG_MOUNTS, ids=[m[0] for m in CONFIG_MOUNTS]
)
def test_config_mounts_in_mountinfo(
    pyoci, bundle, new_id, mount_point, fstype, options, super_options
):
    b = bundle("cat /proc/self/mountinfo")
    mounts = _mountinfo(pyoci, b, new_id())
    assert mount_point in mounts, f"{mount_point} not mounted: {sorted(mounts)}"
    entry = mounts[mount_point]
    if fstype:
        assert entry.fstype == fstype, entry
    assert options <= entry.options, entry
    assert super_options <= entry.super_options, entry


def test_cgroup_mount_is_read_only_all_the_way_down(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/mountinfo")
    mounts = _mountinfo(pyoci, b, new_id())
    below = [e for p, e in mounts.items() if p.startswith("/sys/fs/cgroup")]
    assert below
    for entry in below:
        assert "ro" in entry.options, entry


def test_root_is_the_rootfs_read_only(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/mountinfo; touch /x && echo WROTE")
    result = pyoci.run(b, new_id())
    assert "WROTE" not in result.stdout
    assert "Read-only file system" in result.stderr
    mounts = parse_mountinfo(result.stdout)
    assert "ro" in mounts["/"].options, mounts["/"]
    assert not (b.rootfs / "x").exists()


def test_bind_mount_ro_is_visible_and_read_only(pyoci, bundle, new_id, tmp_path):
    host_dir = tmp_path / "host-data"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("hello from the host\n")
    b = bundle(
        "cat /mnt/data/hello.txt; grep ' /mnt/data ' /proc/self/mountinfo;"
        " touch /mnt/data/new && echo WROTE",
        private=True,
    )
    b.config["mounts"].append(
        {
            "destination": "/mnt/data",
            "type": "bind",
            "source": str(host_dir),
            "options": ["rbind", "ro"],
        }
    )
    b.write()
    result = pyoci.run(b, new_id())
    lines = result.stdout.splitlines()
    assert lines[0] == "hello from the host", result.stdout + result.stderr
    mount = parse_mountinfo("\n".join(lines[1:]))["/mnt/data"]
    assert "ro" in mount.options, mount
    assert "WROTE" not in result.stdout
    assert "Read-only file system" in result.stderr
    assert sorted(os.listdir(host_dir)) == ["hello.txt"]
    pyoci.assert_nothing_left()  # the bind mount lived only in the container's namespace


def test_bind_mount_rw_writes_reach_the_host(pyoci, bundle, new_id, tmp_path):
    host_dir = tmp_path / "host-rw"
    host_dir.mkdir()
    b = bundle("echo written > /mnt/rw/out.txt", private=True)
    b.config["mounts"].append(
        {"destination": "/mnt/rw", "type": "bind", "source": str(host_dir), "options": ["rbind"]}
    )
    b.write()
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert (host_dir / "out.txt").read_text() == "written\n"


def test_tmpfs_size_option_shows_in_super_options(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/mountinfo", private=True)
    b.config["mounts"].append(
        {
            "destination": "/mnt/small",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=1m", "mode=700"],
        }
    )
    b.write()
    mounts = _mountinfo(pyoci, b, new_id())
    entry = mounts["/mnt/small"]
    assert entry.fstype == "tmpfs"
    assert {"size=1024k", "mode=700"} <= entry.super_options, entry
    assert {"nosuid", "nodev"} <= entry.options, entry


# --- /dev ----------------------------------------------------------------------------------------
# name, major, minor (stat's %t:%T prints them in hex)
DEFAULT_DEVICES = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
]


def test_default_devices(pyoci, bundle, new_id):
    paths = " ".join(f"/dev/{name}" for name, _, _ in DEFAULT_DEVICES)
    b = bundle(f"stat -c '%n|%F|%t:%T' {paths}")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    seen = {}
    for line in result.stdout.splitlines():
        name, kind, numbers = line.split("|")
        seen[name] = (kind, numbers)
    for name, major, minor in DEFAULT_DEVICES:
        assert seen[f"/dev/{name}"] == ("character special file", f"{major:x}:{minor:x}"), name


def test_default_devices_work(pyoci, bundle, new_id):
    b = bundle(
        "echo discard > /dev/null && head -c 4 /dev/zero | od -An -tx1;"
        " head -c 16 /dev/urandom | wc -c; echo x > /dev/full || echo FULL"
    )
    result = pyoci.run(b, new_id())
    lines = result.stdout.split("\n")
    assert lines[0].split() == ["00", "00", "00", "00"], result.stdout
    assert lines[1].strip() == "16"
    assert lines[2] == "FULL"
    assert "No space left on device" in result.stderr


@pytest.mark.parametrize(
    "link,target",
    [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ],
)
def test_dev_symlinks(pyoci, bundle, new_id, link, target):
    b = bundle(f"readlink {link}")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == target + "\n"


def test_dev_ptmx_leads_to_the_devpts_multiplexer(pyoci, bundle, new_id):
    b = bundle("stat -L -c '%F %t:%T' /dev/ptmx")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "character special file 5:2\n"


# --- masked and read-only paths ------------------------------------------------------------------
def test_masked_proc_file_reads_empty(pyoci, bundle, new_id):
    candidates = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
    present = [p for p in candidates if os.path.exists(p)]
    if not present:
        pytest.skip(f"none of {candidates} exists on this kernel")
    path = present[0]
    b = bundle(f"wc -c < {path}; grep ' {path} ' /proc/self/mountinfo | wc -l")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    size, mounted = result.stdout.split()
    assert size == "0", f"{path} is not masked"
    assert mounted == "1"


def test_masked_file_and_dir_of_the_rootfs(pyoci, bundle, new_id):
    b = bundle(
        "cat /etc/secret.txt; echo '--'; ls -A /secretdir; echo '--'; touch /secretdir/x",
        private=True,
    )
    (b.rootfs / "etc" / "secret.txt").write_text("SECRET FILE\n")
    (b.rootfs / "secretdir").mkdir()
    (b.rootfs / "secretdir" / "inside").write_text("SECRET DIR\n")
    b.config["linux"]["maskedPaths"] += ["/etc/secret.txt", "/secretdir", "/does/not/exist"]
    b.write()
    result = pyoci.run(b, new_id())
    assert "SECRET" not in result.stdout
    assert result.stdout == "--\n--\n", result.stdout
    assert "Read-only file system" in result.stderr, result.stderr


def test_masked_sys_firmware_is_empty(pyoci, bundle, new_id):
    if not os.listdir("/sys/firmware"):
        pytest.skip("/sys/firmware is empty on this host")
    b = bundle("ls -A /sys/firmware | wc -l")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_readonly_proc_sys(pyoci, bundle, new_id):
    b = bundle(
        "echo other > /proc/sys/kernel/hostname && echo WROTE; hostname;"
        " grep ' /proc/sys ' /proc/self/mountinfo"
    )
    result = pyoci.run(b, new_id())
    assert "WROTE" not in result.stdout
    assert "Read-only file system" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "pyoci"
    assert "ro" in parse_mountinfo(lines[1])["/proc/sys"].options


def test_readonly_path_of_the_rootfs(pyoci, bundle, new_id):
    b = bundle("cat /data/file; echo new > /data/file && echo WROTE", readonly=False)
    (b.rootfs / "data").mkdir()
    (b.rootfs / "data" / "file").write_text("original\n")
    b.config["linux"]["readonlyPaths"].append("/data")
    b.write()
    result = pyoci.run(b, new_id())
    assert result.stdout == "original\n"
    assert "Read-only file system" in result.stderr
    assert (b.rootfs / "data" / "file").read_text() == "original\n"


def test_writable_root_when_readonly_false(pyoci, bundle, new_id):
    b = bundle("echo data > /created-inside && cat /created-inside", readonly=False)
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "data\n"
    assert (b.rootfs / "created-inside").read_text() == "data\n"

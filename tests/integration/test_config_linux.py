"""Issue 4: the Linux fields of config.json, each checked from inside a real container.

User namespaces (uid_map, root inside, default mounts, host devices, host-side ownership),
namespaces joined by path, cgroup and time namespaces; every class of mount option read back
from /proc/self/mountinfo (flags, atime, super options, recursive attributes, propagation,
idmapped mounts) and the symlink-escape containment; linux.devices; masked and read-only paths;
process settings (the five capability sets, noNewPrivileges, rlimits, oomScoreAdj, umask,
groups, sysctl, personality, I/O priority, scheduler, domainname); annotations in `state`;
and a one-line error naming the JSON path for each class of bad input.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from helpers import give_rootfs_to, one_line_error, parse_mountinfo

# --- helpers -------------------------------------------------------------------------------------
# Two disjoint ranges each, so a wrong (single-range) map shows.
HOST_ROOT = 100000
UID_MAPPINGS = [
    {"containerID": 0, "hostID": HOST_ROOT, "size": 1000},
    {"containerID": 1000, "hostID": 200000, "size": 1000},
]
GID_MAPPINGS = [
    {"containerID": 0, "hostID": HOST_ROOT, "size": 1000},
    {"containerID": 1000, "hostID": 300000, "size": 1000},
]

CAP = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_ADMIN": 21,
    "CAP_AUDIT_WRITE": 29,
}


def capmask(*names: str) -> str:
    """The 16-hex-digit form /proc/self/status prints."""
    return f"{sum(1 << CAP[n] for n in names):016x}"


def run_ok(pyoci, b, cid: str) -> str:
    result = pyoci.run(b, cid)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def create_fails(pyoci, b, cid: str, *fragments: str, others: tuple[str, ...] = ()) -> str:
    """`create` must exit 1 with one `pyoci:` line containing every fragment, leaving nothing
    (once the containers `others`, which the test created on purpose, are deleted)."""
    result = pyoci.create(b, cid)
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr}"
    line = one_line_error(result.stderr)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert pyoci("state", cid).returncode != 0
    assert pyoci.state_entries() == sorted(others)
    for other in others:
        assert pyoci("delete", "--force", other).returncode == 0
    pyoci.assert_nothing_left()
    return line


def status_fields(text: str) -> dict[str, str]:
    """`Key:\tvalue` lines (from /proc/self/status) → dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def add_mounts(b, *mounts: dict):
    b.config["mounts"].extend(mounts)
    return b.write()


def add_namespace(config: dict, ns_type: str, path: str | None = None) -> None:
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != ns_type
    ] + [{"type": ns_type, **({"path": path} if path else {})}]


def drop_namespace(config: dict, ns_type: str) -> None:
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != ns_type
    ]


def userns_bundle(bundle, args, *, patch=None, **kwargs):
    """A private rootfs owned by the mapped root (host uid/gid 100000) and a new user
    namespace with the two-range maps."""

    def with_userns(config: dict) -> None:
        add_namespace(config, "user")
        config["linux"]["uidMappings"] = UID_MAPPINGS
        config["linux"]["gidMappings"] = GID_MAPPINGS
        if patch is not None:
            patch(config)

    b = bundle(args, private=True, patch=with_userns, **kwargs)
    give_rootfs_to(b, HOST_ROOT)
    return b


def init_pid(pyoci, cid: str) -> int:
    return pyoci.state(cid)["pid"]


@pytest.fixture
def host_tree(pyoci, tmp_path):
    """tmp_path/tree with a file, and a tmpfs submount at tree/sub holding another file;
    unmounted before the `pyoci` fixture checks for leftover host mounts."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "top.txt").write_text("top\n")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "treesub", str(tree / "sub")], check=True
    )
    try:
        (tree / "sub" / "inner.txt").write_text("inner\n")
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(tree / "sub")], check=False)


def host_propagation_is_private(path: Path) -> bool:
    """True when the host mount holding `path` is private (a shared one would let a
    container's rootfsPropagation=shared leak mounts back to the host)."""
    best, shared = "", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = fields[4]
            if (str(path) + "/").startswith(mp.rstrip("/") + "/") and len(mp) >= len(best):
                best = mp
                shared = any(x.startswith(("shared:", "master:")) for x in fields[6:])
    return not shared


# === user namespaces =============================================================================
def test_userns_uid_and_gid_maps_as_configured(pyoci, bundle, new_id):
    b = userns_bundle(bundle, "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; id -u")
    out = run_ok(pyoci, b, new_id())
    uid_text, gid_text = out.split("--\n")
    uid_lines = [line.split() for line in uid_text.splitlines()]
    gid_lines = [line.split() for line in gid_text.splitlines()[:-1]]
    assert uid_lines == [["0", "100000", "1000"], ["1000", "200000", "1000"]], out
    assert gid_lines == [["0", "100000", "1000"], ["1000", "300000", "1000"]], out
    assert gid_text.splitlines()[-1] == "0"


def test_userns_is_root_inside(pyoci, bundle, new_id):
    b = userns_bundle(bundle, "id -u; id -g; whoami")
    assert run_ok(pyoci, b, new_id()).split() == ["0", "0", "root"]


def test_userns_mounts_proc_tmpfs_devpts_sysfs_with_a_netns(pyoci, bundle, new_id):
    b = userns_bundle(bundle, "cat /proc/self/mountinfo")
    mounts = parse_mountinfo(run_ok(pyoci, b, new_id()))
    assert mounts["/proc"].fstype == "proc"
    assert mounts["/dev"].fstype == "tmpfs"
    assert mounts["/dev/pts"].fstype == "devpts"
    assert mounts["/dev/shm"].fstype == "tmpfs"
    assert mounts["/sys"].fstype == "sysfs"  # allowed: the netns belongs to the userns
    assert "ro" in mounts["/sys"].options


def test_userns_without_netns_gets_sys_as_an_rbind(pyoci, bundle, new_id):
    def patch(config):
        drop_namespace(config, "network")
        config["mounts"] = [
            m
            if m["destination"] != "/sys"
            else {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
            for m in config["mounts"]
            if m["destination"] != "/sys/fs/cgroup"
        ]

    b = userns_bundle(bundle, "cat /proc/self/mountinfo; ls /sys", patch=patch)
    out = run_ok(pyoci, b, new_id())
    mounts = parse_mountinfo(out)
    assert mounts["/sys"].fstype == "sysfs", mounts["/sys"]
    assert "ro" in mounts["/sys"].options
    assert "kernel" in out.split()


def test_userns_sysfs_without_netns_is_a_clean_error(pyoci, bundle, new_id):
    """sysfs cannot be mounted in a user namespace that owns no network namespace."""
    b = userns_bundle(bundle, "true", patch=lambda c: drop_namespace(c, "network"))
    result = pyoci.run(b, new_id())
    if result.returncode == 0:
        return  # pyoci fell back to a bind of the host's /sys, as runc does: fine too
    line = one_line_error(result.stderr)
    assert "mounts[" in line, line
    pyoci.assert_nothing_left()


def test_userns_devices_are_usable(pyoci, bundle, new_id):
    b = userns_bundle(
        bundle,
        "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1;"
        " stat -c '%n %t %T' /dev/null /dev/zero /dev/urandom; head -c 8 /dev/urandom | wc -c",
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out[0] == "null-ok"
    assert out[1].split() == ["00", "00", "00", "00"]
    assert out[2:5] == ["/dev/null 1 3", "/dev/zero 1 5", "/dev/urandom 1 9"]
    assert out[5].strip() == "8"


def test_userns_capabilities_are_the_configured_set(pyoci, bundle, new_id):
    caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    b = userns_bundle(
        bundle,
        "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status",
        process={"capabilities": {"bounding": caps, "effective": caps, "permitted": caps}},
    )
    status = status_fields(run_ok(pyoci, b, new_id()))
    expected = capmask(*caps)
    assert status == {"CapPrm": expected, "CapEff": expected, "CapBnd": expected}


def test_userns_seen_from_the_host(pyoci, bundle, new_id, tmp_path):
    """From the host: the init's uid_map is the configured one, and a file the container's
    root creates in a bind-mounted host dir belongs to host 100000; chowned to 1000:1000 in
    the container, it belongs to host 200000:300000 (the second ranges)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    b = userns_bundle(
        bundle,
        "touch /out/by-root /out/by-user && chown 1000:1000 /out/by-user",
        process={
            "capabilities": {k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
        },
    )
    add_mounts(
        b, {"destination": "/out", "type": "bind", "source": str(out_dir), "options": ["bind"]}
    )
    cid = new_id()
    pyoci.create_ok(b, cid)
    with open(f"/proc/{init_pid(pyoci, cid)}/uid_map") as f:
        assert [line.split() for line in f] == [
            ["0", "100000", "1000"],
            ["1000", "200000", "1000"],
        ]
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
    st = (out_dir / "by-root").stat()
    assert (st.st_uid, st.st_gid) == (HOST_ROOT, HOST_ROOT)
    st = (out_dir / "by-user").stat()
    assert (st.st_uid, st.st_gid) == (200000, 300000)


# === namespaces joined by path ===================================================================
@pytest.fixture
def sleeper(pyoci, bundle, new_id):
    """A created container A (its init waits in create) with hostname `alpha`; returns
    (id, init pid)."""
    b = bundle(["sleep", "60"], hostname="alpha")
    cid = new_id("a")
    pyoci.create_ok(b, cid)
    return cid, init_pid(pyoci, cid)


def test_join_network_ipc_uts_by_path(pyoci, bundle, new_id, sleeper):
    _, pid = sleeper

    def patch(config):
        config.pop("hostname", None)
        for ns in ("network", "ipc", "uts"):
            add_namespace(config, ns, f"/proc/{pid}/ns/{ns[:3] if ns == 'network' else ns}")

    b = bundle(
        "hostname; for n in net ipc uts pid; do readlink /proc/self/ns/$n; done",
        patch=patch,
    )
    out = run_ok(pyoci, b, new_id("b")).splitlines()
    assert out[0] == "alpha"
    assert out[1:4] == [os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("net", "ipc", "uts")]
    assert out[4] != os.readlink(f"/proc/{pid}/ns/pid")  # a new one, not joined


def test_join_pid_namespace_by_path(pyoci, bundle, new_id, sleeper):
    _, pid = sleeper
    b = bundle(
        "echo $$; readlink /proc/self/ns/pid; ls /proc | grep -c '^[0-9]'",
        patch=lambda c: add_namespace(c, "pid", f"/proc/{pid}/ns/pid"),
    )
    out = run_ok(pyoci, b, new_id("b")).splitlines()
    assert out[0] != "1"  # A's init is pid 1 there
    assert out[1] == os.readlink(f"/proc/{pid}/ns/pid")


def test_join_user_namespace_first(pyoci, bundle, new_id):
    """B joins A's user namespace plus its network namespace: B sees A's maps and is root."""
    a = userns_bundle(bundle, ["sleep", "60"])
    a_id = new_id("a")
    pyoci.create_ok(a, a_id)
    pid = init_pid(pyoci, a_id)

    def patch(config):
        add_namespace(config, "user", f"/proc/{pid}/ns/user")
        add_namespace(config, "network", f"/proc/{pid}/ns/net")
        config["linux"].pop("uidMappings", None)
        config["linux"].pop("gidMappings", None)

    b = bundle(
        "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/net",
        private=True,
        patch=patch,
    )
    subprocess.run(["chown", "-R", f"{HOST_ROOT}:{HOST_ROOT}", str(b.rootfs)], check=True)
    out = run_ok(pyoci, b, new_id("b")).splitlines()
    assert [line.split() for line in out[:2]] == [
        ["0", "100000", "1000"],
        ["1000", "200000", "1000"],
    ]
    assert out[2] == "0"
    assert out[3:5] == [os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("user", "net")]


def test_join_path_of_another_namespace_type_is_an_error(pyoci, bundle, new_id, sleeper):
    _, pid = sleeper

    def patch(config):
        config.pop("hostname", None)
        add_namespace(config, "network", f"/proc/{pid}/ns/ipc")

    b = bundle("true", patch=patch)
    index = [n["type"] for n in b.config["linux"]["namespaces"]].index("network")
    assert pyoci.state(sleeper[0])["status"] == "created"
    line = create_fails(
        pyoci, b, new_id("b"), f"linux.namespaces[{index}].path", "not a", others=(sleeper[0],)
    )
    assert "network namespace" in line, line


def test_join_path_that_is_not_a_namespace_is_an_error(pyoci, bundle, new_id):
    b = bundle("true", patch=lambda c: add_namespace(c, "ipc", "/etc/hostname"))
    create_fails(pyoci, b, new_id(), "linux.namespaces[", ".path", "not a")


def test_join_nonexistent_path_is_an_error(pyoci, bundle, new_id):
    b = bundle("true", patch=lambda c: add_namespace(c, "ipc", "/proc/999999999/ns/ipc"))
    index = [n["type"] for n in b.config["linux"]["namespaces"]].index("ipc")
    create_fails(pyoci, b, new_id(), f"linux.namespaces[{index}].path", "no such file")


def test_cgroup_namespace_roots(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/cgroup", patch=lambda c: add_namespace(c, "cgroup"))
    lines = run_ok(pyoci, b, new_id()).splitlines()
    assert lines
    for line in lines:
        assert line.split(":", 2)[2] == "/", lines


def test_time_namespace_offsets(pyoci, bundle, new_id):
    def patch(config):
        add_namespace(config, "time")
        config["linux"]["timeOffsets"] = {
            "monotonic": {"secs": 86400, "nanosecs": 0},
            "boottime": {"secs": 172800, "nanosecs": 500},
        }

    b = bundle("cat /proc/self/timens_offsets; cat /proc/uptime", patch=patch)
    out = run_ok(pyoci, b, new_id()).splitlines()
    offsets = {line.split()[0]: line.split()[1:] for line in out[:-1]}
    assert offsets["monotonic"] == ["86400", "0"], out
    assert offsets["boottime"] == ["172800", "500"], out
    assert float(out[-1].split()[0]) >= 172800  # uptime runs on the boottime clock


# === mounts ======================================================================================
TMPFS_CASES = [
    # option, per-mount options shown, per-mount options not shown, super options shown
    ("ro", {"ro"}, {"rw"}, set()),
    ("rw", {"rw"}, {"ro"}, set()),
    ("nosuid", {"nosuid"}, set(), set()),
    ("nodev", {"nodev"}, set(), set()),
    ("noexec", {"noexec"}, set(), set()),
    ("relatime", {"relatime"}, {"noatime"}, set()),
    ("noatime", {"noatime"}, {"relatime"}, set()),
    ("strictatime", set(), {"relatime", "noatime"}, set()),
    ("nodiratime", {"nodiratime"}, set(), set()),
    ("sync", set(), set(), {"sync"}),
    ("dirsync", set(), set(), {"dirsync"}),
    ("lazytime", set(), set(), {"lazytime"}),
    # accepted (runc and crun take them), nothing to see in mountinfo
    ("silent", set(), set(), set()),
    ("loud", set(), set(), set()),
    ("mand", set(), set(), set()),
    ("nomand", set(), set(), set()),
    ("defaults", {"rw"}, set(), set()),
]


@pytest.mark.parametrize(
    "option,shown,not_shown,super_shown", TMPFS_CASES, ids=[c[0] for c in TMPFS_CASES]
)
def test_tmpfs_mount_option(pyoci, bundle, new_id, option, shown, not_shown, super_shown):
    b = bundle("grep ' /tmp ' /proc/self/mountinfo")
    add_mounts(b, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": [option]})
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/tmp"]
    assert entry.fstype == "tmpfs"
    assert shown <= entry.options, entry
    assert not (not_shown & entry.options), entry
    assert super_shown <= entry.super_options, entry


def test_tmpfs_size_and_mode_data(pyoci, bundle, new_id):
    b = bundle("grep ' /tmp ' /proc/self/mountinfo; stat -c %a /tmp")
    add_mounts(
        b,
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "size=2m", "mode=1750"],
        },
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    entry = parse_mountinfo(out[0])["/tmp"]
    assert {"size=2048k", "mode=1750"} <= entry.super_options, entry
    assert out[1] == "1750"


def test_remount_changes_an_earlier_mount(pyoci, bundle, new_id):
    b = bundle("grep ' /tmp ' /proc/self/mountinfo; touch /tmp/x 2>/dev/null || echo RO")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["remount", "ro", "nosuid", "size=1m"],
        },
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert len(out) == 2, out  # still one mount on /tmp, not a second tmpfs over it
    entry = parse_mountinfo(out[0])["/tmp"]
    assert {"ro", "nosuid"} <= entry.options, entry
    assert out[1] == "RO"


def test_bind_flags_ro_nosuid_nodev_noexec(pyoci, bundle, new_id, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("data\n")
    b = bundle("cat /tmp/b/f; grep ' /tmp/b ' /proc/self/mountinfo; touch /tmp/b/g || echo RO")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {
            "destination": "/tmp/b",
            "type": "bind",
            "source": str(src),
            "options": ["bind", "ro", "nosuid", "nodev", "noexec"],
        },
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out[0] == "data"
    entry = parse_mountinfo(out[1])["/tmp/b"]
    assert {"ro", "nosuid", "nodev", "noexec"} <= entry.options, entry
    assert out[2] == "RO"
    assert sorted(os.listdir(src)) == ["f"]


def test_bind_file_onto_file(pyoci, bundle, new_id, tmp_path):
    src = tmp_path / "greeting.txt"
    src.write_text("hello file\n")
    b = bundle(
        "cat /tmp/dir/greeting; stat -c %F /tmp/dir/greeting;"
        " grep -c ' /tmp/dir/greeting ' /proc/self/mountinfo"
    )
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {
            "destination": "/tmp/dir/greeting",
            "type": "bind",
            "source": str(src),
            "options": ["bind", "ro"],
        },
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out == ["hello file", "regular file", "1"]


def test_bind_file_onto_existing_file_of_the_rootfs(pyoci, bundle, new_id, tmp_path):
    src = tmp_path / "hostname"
    src.write_text("from-the-bind\n")
    b = bundle("cat /etc/hostname")
    add_mounts(
        b, {"destination": "/etc/hostname", "type": "bind", "source": str(src), "options": ["bind"]}
    )
    assert run_ok(pyoci, b, new_id()) == "from-the-bind\n"


def test_bind_is_not_recursive_rbind_is(pyoci, bundle, new_id, host_tree):
    b = bundle("ls /tmp/plain/sub; echo --; ls /tmp/rec/sub")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {
            "destination": "/tmp/plain",
            "type": "bind",
            "source": str(host_tree),
            "options": ["bind"],
        },
        {"destination": "/tmp/rec", "type": "bind", "source": str(host_tree), "options": ["rbind"]},
    )
    plain, rec = run_ok(pyoci, b, new_id()).split("--\n")
    assert plain.split() == []
    assert rec.split() == ["inner.txt"]


RECURSIVE_CASES = [
    # option, per-mount option the submount must show, option it must not show
    ("rro", "ro", None),
    ("rnosuid", "nosuid", None),
    ("rnodev", "nodev", None),
    ("rnoexec", "noexec", None),
    ("rnodiratime", "nodiratime", None),
    ("rnoatime", "noatime", "relatime"),
    ("rstrictatime", None, "relatime"),
]


def _rbind_with(pyoci, bundle, new_id, host_tree, option: str) -> dict:
    """Mountinfo (by mount point) of a container where `host_tree`, which holds a submount,
    is rbind-mounted at /tmp/r with `option`."""
    b = bundle("cat /proc/self/mountinfo")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {
            "destination": "/tmp/r",
            "type": "bind",
            "source": str(host_tree),
            "options": ["rbind", option],
        },
    )
    return parse_mountinfo(run_ok(pyoci, b, new_id()))


@pytest.mark.parametrize(
    "option,shown,not_shown", RECURSIVE_CASES, ids=[c[0] for c in RECURSIVE_CASES]
)
def test_recursive_attribute_reaches_the_submount(
    pyoci, bundle, new_id, host_tree, option, shown, not_shown
):
    mounts = _rbind_with(pyoci, bundle, new_id, host_tree, option)
    for point in ("/tmp/r", "/tmp/r/sub"):
        if shown:
            assert shown in mounts[point].options, mounts[point]
        if not_shown:
            assert not_shown not in mounts[point].options, mounts[point]


def test_rro_makes_the_submount_read_only_for_writes(pyoci, bundle, new_id, host_tree):
    b = bundle("touch /tmp/r/sub/new 2>/dev/null || echo RO-SUB; cat /tmp/r/sub/inner.txt")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {
            "destination": "/tmp/r",
            "type": "bind",
            "source": str(host_tree),
            "options": ["rbind", "rro"],
        },
    )
    assert run_ok(pyoci, b, new_id()).splitlines() == ["RO-SUB", "inner"]
    assert sorted(os.listdir(host_tree / "sub")) == ["inner.txt"]


def test_tmpcopyup_keeps_the_directory_contents(pyoci, bundle, new_id):
    b = bundle("ls /etc; grep ' /etc ' /proc/self/mountinfo; echo new > /etc/new && cat /etc/new")
    add_mounts(
        b,
        {
            "destination": "/etc",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["tmpcopyup", "mode=755"],
        },
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert {"group", "hostname", "passwd"} <= set(out[:3]), out
    assert parse_mountinfo(out[3])["/etc"].fstype == "tmpfs"
    assert out[4] == "new"
    assert not (b.rootfs / "etc" / "new").exists()


def optional_fields(entry) -> list[str]:
    fields = entry.line.split()
    return fields[6 : fields.index("-")]


@pytest.mark.parametrize(
    "option,expected",
    [("shared", "shared:"), ("private", None), ("unbindable", "unbindable")],
)
def test_per_mount_propagation(pyoci, bundle, new_id, tmp_path, option, expected):
    src = tmp_path / "src"
    src.mkdir()
    b = bundle("grep ' /tmp/p ' /proc/self/mountinfo")
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/tmp/p", "type": "bind", "source": str(src), "options": ["bind", option]},
    )
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/tmp/p"]
    fields = optional_fields(entry)
    if expected is None:
        assert fields == [], entry
    else:
        assert any(f.startswith(expected) for f in fields), entry


def test_per_mount_slave_propagation(pyoci, bundle, new_id, tmp_path):
    """/mnt/a is made shared; /mnt/b binds it (the source path is resolved in the container's
    mount namespace, so it is /mnt/a's mount) and is made slave: `master:N` of a's group."""
    b = bundle("grep -E ' /mnt/(a|b) ' /proc/self/mountinfo", private=True)
    (b.rootfs / "mnt" / "a").mkdir(parents=True)
    (b.rootfs / "mnt" / "b").mkdir()
    add_mounts(
        b,
        {"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]},
        {
            "destination": "/mnt/b",
            "type": "bind",
            "source": str(b.rootfs / "mnt" / "a"),
            "options": ["bind", "slave"],
        },
    )
    mounts = parse_mountinfo(run_ok(pyoci, b, new_id()))
    shared = [f for f in optional_fields(mounts["/mnt/a"]) if f.startswith("shared:")]
    assert shared, mounts["/mnt/a"]
    group = shared[0].split(":")[1]
    assert f"master:{group}" in optional_fields(mounts["/mnt/b"]), mounts["/mnt/b"]
    assert not any(f.startswith("shared:") for f in optional_fields(mounts["/mnt/b"]))


@pytest.mark.parametrize(
    "option,expected", [("rshared", "shared:"), ("runbindable", "unbindable"), ("rprivate", None)]
)
def test_recursive_propagation_reaches_the_submount(
    pyoci, bundle, new_id, host_tree, option, expected
):
    mounts = _rbind_with(pyoci, bundle, new_id, host_tree, option)
    for point in ("/tmp/r", "/tmp/r/sub"):
        fields = optional_fields(mounts[point])
        if expected is None:
            assert fields == [], mounts[point]
        else:
            assert any(f.startswith(expected) for f in fields), mounts[point]


def test_rootfs_propagation_default_is_not_shared(pyoci, bundle, new_id):
    b = bundle("awk '$5 == \"/\"' /proc/self/mountinfo")
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/"]
    assert not any(f.startswith("shared:") for f in optional_fields(entry)), entry


@pytest.mark.parametrize("propagation", ["shared", "rshared"])
def test_rootfs_propagation_shared(pyoci, bundle, new_id, tmp_path, propagation):
    if not host_propagation_is_private(tmp_path):
        pytest.skip("the host mount of the tests' tmp dir is shared: the container would leak")
    b = bundle("awk '$5 == \"/\"' /proc/self/mountinfo")
    b.config["linux"]["rootfsPropagation"] = propagation
    b.write()
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/"]
    assert any(f.startswith("shared:") for f in optional_fields(entry)), entry


@pytest.mark.parametrize("propagation", ["private", "rprivate", "slave", "rslave"])
def test_rootfs_propagation_private_or_slave(pyoci, bundle, new_id, tmp_path, propagation):
    if not host_propagation_is_private(tmp_path):
        pytest.skip("the host mount of the tests' tmp dir is shared")
    b = bundle("awk '$5 == \"/\"' /proc/self/mountinfo")
    b.config["linux"]["rootfsPropagation"] = propagation
    b.write()
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/"]
    # The host side is private, so a slave has no master left: nothing shown either way.
    assert not any(f.startswith("shared:") for f in optional_fields(entry)), entry


def test_rootfs_propagation_unbindable(pyoci, bundle, new_id):
    b = bundle("awk '$5 == \"/\"' /proc/self/mountinfo")
    b.config["linux"]["rootfsPropagation"] = "unbindable"
    b.write()
    entry = parse_mountinfo(run_ok(pyoci, b, new_id()))["/"]
    assert "unbindable" in optional_fields(entry), entry


def _idmap_source(tmp_path: Path) -> Path:
    src = tmp_path / "idsrc"
    src.mkdir()
    (src / "owned-by-host-root").write_text("x\n")
    os.chown(src / "owned-by-host-root", 0, 0)
    (src / "owned-by-host-1000").write_text("y\n")
    os.chown(src / "owned-by-host-1000", 1000, 1000)
    src.chmod(0o755)
    return src


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmapped_bind_mount(pyoci, bundle, new_id, tmp_path, option):
    src = _idmap_source(tmp_path)
    b = userns_bundle(
        bundle,
        "ls -ln /mnt/idmapped; echo --; ls -ln /mnt/plain;"
        " grep ' /mnt/idmapped ' /proc/self/mountinfo",
    )
    (b.rootfs / "mnt" / "idmapped").mkdir(parents=True)
    (b.rootfs / "mnt" / "plain").mkdir()
    add_mounts(
        b,
        {
            "destination": "/mnt/idmapped",
            "type": "bind",
            "source": str(src),
            "options": ["bind", option],
        },
        {"destination": "/mnt/plain", "type": "bind", "source": str(src), "options": ["bind"]},
    )
    result = pyoci.run(b, new_id())
    if result.returncode != 0 and "not supported" in result.stderr:
        pytest.skip(f"idmapped mounts unavailable here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    idmapped, rest = result.stdout.split("--\n")
    owners = {
        line.split()[-1]: line.split()[2:4] for line in idmapped.splitlines() if line[0] == "-"
    }
    assert owners["owned-by-host-root"] == ["0", "0"], idmapped
    # The mount uses the container's maps: on-disk 1000 → host 200000 → container 1000.
    assert owners["owned-by-host-1000"] == ["1000", "1000"], idmapped
    plain = {line.split()[-1]: line.split()[2:4] for line in rest.splitlines() if line[0] == "-"}
    assert plain["owned-by-host-root"] == ["65534", "65534"], rest
    assert "idmapped" in rest.splitlines()[-1]


def test_mount_level_uid_gid_mappings(pyoci, bundle, new_id, tmp_path):
    """A mount's own maps: on-disk 0 → container 0 through containerID 0 / hostID 100000."""
    src = _idmap_source(tmp_path)
    b = userns_bundle(bundle, "ls -ln /mnt/m")
    (b.rootfs / "mnt" / "m").mkdir(parents=True)
    add_mounts(
        b,
        {
            "destination": "/mnt/m",
            "type": "bind",
            "source": str(src),
            "options": ["bind"],
            "uidMappings": [{"containerID": 0, "hostID": HOST_ROOT, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": HOST_ROOT, "size": 1}],
        },
    )
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    owners = {
        line.split()[-1]: line.split()[2:4] for line in result.stdout.splitlines() if line[0] == "-"
    }
    assert owners["owned-by-host-root"] == ["0", "0"], result.stdout
    assert owners["owned-by-host-1000"] == ["65534", "65534"], result.stdout


def test_idmap_without_user_namespace_is_an_error(pyoci, bundle, new_id, tmp_path):
    b = bundle("true")
    add_mounts(
        b,
        {
            "destination": "/tmp",
            "type": "bind",
            "source": str(tmp_path),
            "options": ["bind", "idmap"],
        },
    )
    create_fails(pyoci, b, new_id(), f"mounts[{len(b.config['mounts']) - 1}]")


# --- symlinks in the rootfs must not lead a mount out of it --------------------------------------
def test_absolute_symlink_to_host_dir_is_contained(pyoci, bundle, new_id, tmp_path):
    host_dir = tmp_path / "host-target"
    host_dir.mkdir()
    b = bundle("cat /proc/self/mountinfo", private=True)
    (b.rootfs / "mnt").symlink_to(host_dir)  # absolute: /tmp/pytest-.../host-target
    add_mounts(b, {"destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs"})
    result = pyoci.run(b, new_id())
    assert os.listdir(host_dir) == [], "pyoci created the mount point on the host"
    if result.returncode != 0:  # refused: fine, if it says so cleanly
        assert "mounts[" in one_line_error(result.stderr)
        return
    mounts = parse_mountinfo(result.stdout)
    inside = str(host_dir) + "/x"
    assert inside in mounts, sorted(mounts)  # the symlink was followed inside the rootfs
    assert (b.rootfs / str(host_dir).lstrip("/") / "x").is_dir()


def test_relative_symlink_to_host_etc_is_contained(pyoci, bundle, new_id):
    before = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    ino = os.stat("/etc/passwd").st_ino
    b = bundle("wc -c < /etc/passwd; cat /proc/self/mountinfo", private=True)
    (b.rootfs / "evil").symlink_to("../../../../../../../../etc")
    add_mounts(
        b,
        {"destination": "/evil/passwd", "type": "bind", "source": "/dev/null", "options": ["bind"]},
    )
    result = pyoci.run(b, new_id())
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == before
    assert os.stat("/etc/passwd").st_ino == ino
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if line.split()[4] == "/etc/passwd"]
    if result.returncode != 0:
        assert "mounts[" in one_line_error(result.stderr)
        return
    out = result.stdout.splitlines()
    assert out[0].strip() == "0"  # the rootfs's own /etc/passwd got the /dev/null bind
    assert "/etc/passwd" in parse_mountinfo("\n".join(out[1:]))
    assert (b.rootfs / "etc" / "passwd").stat().st_size > 0  # a bind, not a write


# === devices =====================================================================================
def test_linux_devices_char_block_fifo(pyoci, bundle, new_id):
    devices = [
        {
            "path": "/dev/mychar",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o600,
            "uid": 1000,
            "gid": 1000,
        },
        {
            "path": "/dev/myblock",
            "type": "b",
            "major": 7,
            "minor": 0,
            "fileMode": 0o660,
            "uid": 0,
            "gid": 6,
        },
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o644},
        {"path": "/dev/sub/dir/mynull", "type": "c", "major": 1, "minor": 3},
    ]
    b = bundle(
        "stat -c '%F|%t %T|%a|%u %g' /dev/mychar /dev/myblock /dev/myfifo;"
        " echo x > /dev/sub/dir/mynull && echo nested-ok",
        patch=lambda c: c["linux"].__setitem__("devices", devices),
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out == [
        "character special file|1 3|600|1000 1000",
        "block special file|7 0|660|0 6",
        "fifo|0 0|644|0 0",
        "nested-ok",
    ]


def test_default_devices_present_alongside_linux_devices(pyoci, bundle, new_id):
    devices = [{"path": "/dev/mychar", "type": "c", "major": 1, "minor": 5}]
    names = ["null", "zero", "full", "random", "urandom", "tty", "mychar"]
    b = bundle(
        "stat -c '%n %t %T' " + " ".join(f"/dev/{n}" for n in names),
        patch=lambda c: c["linux"].__setitem__("devices", devices),
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out == [
        "/dev/null 1 3",
        "/dev/zero 1 5",
        "/dev/full 1 7",
        "/dev/random 1 8",
        "/dev/urandom 1 9",
        "/dev/tty 5 0",
        "/dev/mychar 1 5",
    ]


# === masked and read-only paths, root.readonly ===================================================
def test_masked_file_and_dir(pyoci, bundle, new_id):
    b = bundle(
        "wc -c < /etc/passwd; ls -A /usr | wc -l; cat /proc/kcore | wc -c",
        patch=lambda c: c["linux"]["maskedPaths"].extend(["/etc/passwd", "/usr", "/nonexistent"]),
    )
    out = [line.strip() for line in run_ok(pyoci, b, new_id()).splitlines()]
    assert out == ["0", "0", "0"]


def test_readonly_paths(pyoci, bundle, new_id):
    b = bundle(
        "grep -E ' /tmp/ro ' /proc/self/mountinfo; touch /tmp/ro/x 2>/dev/null || echo RO;"
        " touch /tmp/rw && echo RW",
        patch=lambda c: c["linux"]["readonlyPaths"].append("/tmp/ro"),
    )
    add_mounts(
        b,
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
        {"destination": "/tmp/ro", "type": "tmpfs", "source": "tmpfs"},
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert "ro" in parse_mountinfo("\n".join(out[:-2]))["/tmp/ro"].options, out
    assert out[-2:] == ["RO", "RW"]


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(pyoci, bundle, new_id, readonly):
    b = bundle(
        "awk '$5 == \"/\"' /proc/self/mountinfo;"
        " touch /newfile 2>/dev/null && echo WROTE || echo RO",
        readonly=readonly,
        private=True,
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    entry = parse_mountinfo(out[0])["/"]
    assert ("ro" in entry.options) is readonly, entry
    assert out[1] == ("RO" if readonly else "WROTE")
    assert (b.rootfs / "newfile").exists() is not readonly


# === process =====================================================================================
def test_capabilities_all_five_sets_non_root(pyoci, bundle, new_id):
    bounding = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE"]
    caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"]
    ambient = ["CAP_CHOWN", "CAP_NET_RAW"]
    b = bundle(
        "id -u; grep -E '^Cap' /proc/self/status",
        process={
            "user": {"uid": 1000, "gid": 1000},
            "capabilities": {
                "bounding": bounding,
                "effective": caps,
                "permitted": caps,
                "inheritable": caps,
                "ambient": ambient,
            },
        },
    )
    out = run_ok(pyoci, b, new_id())
    assert out.splitlines()[0] == "1000"
    assert status_fields(out) == {
        "CapInh": capmask(*caps),
        # after execve a non-root process keeps exactly its ambient set in P and E
        "CapPrm": capmask(*ambient),
        "CapEff": capmask(*ambient),
        "CapBnd": capmask(*bounding),
        "CapAmb": capmask(*ambient),
    }


def test_capabilities_root_with_ambient(pyoci, bundle, new_id):
    caps = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE"]
    b = bundle(
        "grep -E '^Cap' /proc/self/status",
        process={
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "inheritable": ["CAP_NET_RAW"],
                "ambient": ["CAP_NET_RAW"],
            }
        },
    )
    assert status_fields(run_ok(pyoci, b, new_id())) == {
        "CapInh": capmask("CAP_NET_RAW"),
        "CapPrm": capmask(*caps),
        "CapEff": capmask(*caps),
        "CapBnd": capmask(*caps),
        "CapAmb": capmask("CAP_NET_RAW"),
    }


def test_an_unknown_capability_set_is_ignored_and_grants_nothing(pyoci, bundle, new_id):
    """config.md, Extensibility: an unknown property MUST NOT be an error and MUST be ignored
    (runc ignores it too). What a misspelt `effectiv` lists is granted nowhere: CAP_SYS_ADMIN
    is in no set; the other sets are as written (root's execve makes E = P = bounding here)."""
    caps = ["CAP_CHOWN", "CAP_KILL"]
    b = bundle(
        "grep -E '^Cap' /proc/self/status",
        process={
            "capabilities": {
                "bounding": caps,
                "permitted": caps,
                "effectiv": ["CAP_SYS_ADMIN", *caps],
            }
        },
    )
    assert status_fields(run_ok(pyoci, b, new_id())) == {
        "CapInh": capmask(),
        "CapPrm": capmask(*caps),
        "CapEff": capmask(*caps),
        "CapBnd": capmask(*caps),
        "CapAmb": capmask(),
    }


def test_capabilities_are_effective(pyoci, bundle, new_id, tmp_path):
    """CAP_CHOWN in the sets lets uid 1000 chown; without it the same chown fails."""

    def make(with_chown: bool):
        caps = ["CAP_CHOWN"] if with_chown else ["CAP_KILL"]
        return bundle(
            "touch /tmp/f && chown 0:0 /tmp/f && echo CHOWNED || echo DENIED",
            process={
                "user": {"uid": 1000, "gid": 1000},
                "capabilities": {
                    k: caps
                    for k in ("bounding", "effective", "permitted", "inheritable", "ambient")
                },
            },
            patch=lambda c: c["mounts"].append(
                {
                    "destination": "/tmp",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["mode=1777"],
                }
            ),
        )

    assert run_ok(pyoci, make(True), new_id()).strip() == "CHOWNED"
    assert run_ok(pyoci, make(False), new_id()).strip() == "DENIED"


def test_unknown_capability_is_an_error(pyoci, bundle, new_id):
    b = bundle("true", process={"capabilities": {"bounding": ["CAP_CHOWN", "CAP_NOPE"]}})
    create_fails(pyoci, b, new_id(), "process.capabilities.bounding[1]", "CAP_NOPE")


@pytest.mark.parametrize("value,expected", [(True, "1"), (False, "0")])
def test_no_new_privileges(pyoci, bundle, new_id, value, expected):
    b = bundle("grep NoNewPrivs /proc/self/status", process={"noNewPrivileges": value})
    assert status_fields(run_ok(pyoci, b, new_id()))["NoNewPrivs"] == expected


def _limits(text: str) -> dict[str, list[str]]:
    out = {}
    for line in text.splitlines()[1:]:
        cols = re.split(r"\s{2,}", line.strip())
        out[cols[0]] = cols[1:]
    return out


def test_rlimits(pyoci, bundle, new_id):
    b = bundle(
        "cat /proc/self/limits",
        process={
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 768},
                {"type": "RLIMIT_CORE", "soft": 1024, "hard": 4096},
                {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
            ]
        },
    )
    limits = _limits(run_ok(pyoci, b, new_id()))
    assert limits["Max open files"][:2] == ["512", "768"]
    assert limits["Max core file size"][:2] == ["1024", "4096"]
    assert limits["Max processes"][:2] == ["300", "400"]


def test_unknown_rlimit_is_an_error(pyoci, bundle, new_id):
    b = bundle("true", process={"rlimits": [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]})
    create_fails(pyoci, b, new_id(), "process.rlimits[0].type", "RLIMIT_NOPE")


def test_rlimit_above_the_hosts_hard_limit_is_a_clean_error(pyoci, bundle, new_id):
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or _has_cap(24):
        pytest.skip("CAP_SYS_RESOURCE present: raising the hard limit is allowed here")
    b = bundle(
        "true", process={"rlimits": [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]}
    )
    create_fails(pyoci, b, new_id(), "process.rlimits[0]")


def _has_cap(number: int) -> bool:
    with open("/proc/self/status") as f:
        eff = int(status_fields(f.read())["CapEff"], 16)
    return bool(eff & (1 << number))


def test_oom_score_adj(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/oom_score_adj", process={"oomScoreAdj": 500})
    assert run_ok(pyoci, b, new_id()) == "500\n"


def test_negative_oom_score_adj_without_cap_sys_resource_is_a_clean_error(pyoci, bundle, new_id):
    if _has_cap(24):
        pytest.skip("CAP_SYS_RESOURCE present: a negative oomScoreAdj is allowed here")
    b = bundle("true", process={"oomScoreAdj": -500})
    create_fails(pyoci, b, new_id(), "process.oomScoreAdj")


def test_umask(pyoci, bundle, new_id):
    b = bundle(
        "grep Umask /proc/self/status; umask",
        process={"user": {"uid": 0, "gid": 0, "umask": 0o027}},
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert status_fields(out[0])["Umask"] == "0027"
    assert out[1] == "0027"


def test_additional_gids(pyoci, bundle, new_id):
    b = bundle(
        "grep -E '^(Groups|Gid|Uid)' /proc/self/status",
        process={"user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20, 3000]}},
    )
    status = status_fields(run_ok(pyoci, b, new_id()))
    assert sorted(status["Groups"].split()) == ["10", "20", "3000"]
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4


def test_env_and_missing_cwd(pyoci, bundle, new_id):
    b = bundle(
        'pwd; echo "$ALPHA|$BETA"',
        private=True,
        process={"cwd": "/work/not/yet"},
        env=["ALPHA=one", "BETA=two=2"],
    )
    assert run_ok(pyoci, b, new_id()).splitlines() == ["/work/not/yet", "one|two=2"]


def test_sysctl_in_namespaces(pyoci, bundle, new_id):
    b = bundle(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax",
        patch=lambda c: c["linux"].__setitem__(
            "sysctl", {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
        ),
    )
    host_before = Path("/proc/sys/kernel/msgmax").read_text()
    assert run_ok(pyoci, b, new_id()).split() == ["1", "4096"]
    assert Path("/proc/sys/kernel/msgmax").read_text() == host_before


def test_net_sysctl_without_network_namespace_is_an_error(pyoci, bundle, new_id):
    def patch(config):
        drop_namespace(config, "network")
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}

    create_fails(pyoci, bundle("true", patch=patch), new_id(), "linux.sysctl.net.ipv4.ip_forward")


def test_ipc_sysctl_without_ipc_namespace_is_an_error(pyoci, bundle, new_id):
    def patch(config):
        drop_namespace(config, "ipc")
        config["linux"]["sysctl"] = {"kernel.shmmax": "1000000"}

    create_fails(pyoci, bundle("true", patch=patch), new_id(), "linux.sysctl.kernel.shmmax")


def test_non_namespaced_sysctl_is_an_error(pyoci, bundle, new_id):
    b = bundle("true", patch=lambda c: c["linux"].__setitem__("sysctl", {"vm.swappiness": "10"}))
    create_fails(pyoci, b, new_id(), "linux.sysctl.vm.swappiness")


def test_personality_linux32(pyoci, bundle, new_id):
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 → i686 is checked on x86_64 only")
    b = bundle(
        "uname -m", patch=lambda c: c["linux"].__setitem__("personality", {"domain": "LINUX32"})
    )
    assert run_ok(pyoci, b, new_id()) == "i686\n"


def test_io_priority(pyoci, bundle, new_id):
    b = bundle("ionice -p $$", process={"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}})
    assert run_ok(pyoci, b, new_id()).strip() == "best-effort: prio 6"


def test_io_priority_idle(pyoci, bundle, new_id):
    b = bundle(
        "ionice -p $$", process={"ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}}
    )
    assert run_ok(pyoci, b, new_id()).strip().startswith("idle")


def test_scheduler_batch_with_nice(pyoci, bundle, new_id):
    if not os.path.exists("/proc/self/sched"):
        pytest.skip("/proc/self/sched needs CONFIG_SCHED_DEBUG")
    b = bundle(
        "grep -E '^policy' /proc/self/sched; cut -d' ' -f19 /proc/self/stat",
        process={"scheduler": {"policy": "SCHED_BATCH", "nice": 5}},
    )
    out = run_ok(pyoci, b, new_id()).splitlines()
    assert out[0].split(":")[1].strip() == "3"
    assert out[1] == "5"


def test_domainname(pyoci, bundle, new_id):
    b = bundle("cat /proc/sys/kernel/domainname; hostname", domainname="example.org")
    assert run_ok(pyoci, b, new_id()).splitlines() == ["example.org", "pyoci"]


# === annotations =================================================================================
def test_annotations_in_state(pyoci, bundle, new_id):
    annotations = {"org.example.key": "value", "org.example.empty": "", "x": "a b=c"}
    b = bundle(["sleep", "30"], annotations=annotations)
    cid = new_id()
    pyoci.create_ok(b, cid)
    assert pyoci.state(cid)["annotations"] == annotations
    assert pyoci("delete", "--force", cid).returncode == 0


# === bad input: one line naming the JSON path, exit 1, nothing left ==============================
def _set(path: str, value):
    """patch(config) setting a dotted path (creating objects on the way)."""

    def patch(config):
        node = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return patch


def _both(*patches):
    def patch(config):
        for p in patches:
            p(config)

    return patch


BAD_INPUT = [
    (
        "rlimit-soft-above-hard",
        _set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]),
        "process.rlimits[0]",
    ),
    (
        "rlimit-duplicate",
        _set("process.rlimits", [{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}] * 2),
        "process.rlimits[1].type",
    ),
    ("oom-out-of-range", _set("process.oomScoreAdj", 1001), "process.oomScoreAdj"),
    ("umask-out-of-range", _set("process.user.umask", 0o10000), "process.user.umask"),
    (
        "gid-not-int",
        _set("process.user.additionalGids", ["wheel"]),
        "process.user.additionalGids[0]",
    ),
    (
        "namespace-type",
        lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
        "linux.namespaces[5].type",
    ),
    (
        "namespace-duplicate",
        lambda c: c["linux"]["namespaces"].append({"type": "ipc"}),
        "linux.namespaces[5].type",
    ),
    (
        "namespace-relative-path",
        lambda c: add_namespace(c, "ipc", "proc/1/ns/ipc"),
        "linux.namespaces[4].path",
    ),
    ("mappings-without-userns", _set("linux.uidMappings", UID_MAPPINGS), "linux.uidMappings"),
    (
        "userns-without-mappings",
        lambda c: add_namespace(c, "user"),
        "linux.uidMappings",
    ),
    (
        "mapping-size-zero",
        _both(
            lambda c: add_namespace(c, "user"),
            _set("linux.uidMappings", [{"containerID": 0, "hostID": 100000, "size": 0}]),
            _set("linux.gidMappings", GID_MAPPINGS),
        ),
        "linux.uidMappings[0].size",
    ),
    (
        "device-type",
        _set("linux.devices", [{"path": "/dev/x", "type": "x", "major": 1, "minor": 3}]),
        "linux.devices[0].type",
    ),
    (
        "device-no-major",
        _set("linux.devices", [{"path": "/dev/x", "type": "c"}]),
        "linux.devices[0]",
    ),
    (
        "device-relative-path",
        _set("linux.devices", [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]),
        "linux.devices[0].path",
    ),
    ("masked-relative", _set("linux.maskedPaths", ["proc/kcore"]), "linux.maskedPaths[0]"),
    ("readonly-relative", _set("linux.readonlyPaths", ["proc/sys"]), "linux.readonlyPaths[0]"),
    ("rootfs-propagation", _set("linux.rootfsPropagation", "sideways"), "linux.rootfsPropagation"),
    (
        "sysctl-not-string",
        _set("linux.sysctl", {"net.ipv4.ip_forward": 1}),
        "linux.sysctl.net.ipv4.ip_forward",
    ),
    (
        "time-offsets-without-timens",
        _set("linux.timeOffsets", {"monotonic": {"secs": 1}}),
        "linux.timeOffsets",
    ),
    (
        "time-offsets-clock",
        _both(
            lambda c: add_namespace(c, "time"), _set("linux.timeOffsets", {"realtime": {"secs": 1}})
        ),
        "linux.timeOffsets.realtime",
    ),
    (
        "personality-domain",
        _set("linux.personality", {"domain": "LINUX64"}),
        "linux.personality.domain",
    ),
    (
        "io-priority-class",
        _set("process.ioPriority", {"class": "IOPRIO_CLASS_FAST", "priority": 0}),
        "process.ioPriority.class",
    ),
    (
        "io-priority-level",
        _set("process.ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 9}),
        "process.ioPriority.priority",
    ),
    (
        "scheduler-policy",
        _set("process.scheduler", {"policy": "SCHED_FAST"}),
        "process.scheduler.policy",
    ),
    (
        "scheduler-flag",
        _set("process.scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_NOPE"]}),
        "process.scheduler.flags[0]",
    ),
    (
        "hostname-without-uts",
        _both(_set("hostname", "h"), lambda c: drop_namespace(c, "uts")),
        "hostname",
    ),
    (
        "domainname-without-uts",
        _both(
            _set("domainname", "d"), lambda c: c.pop("hostname"), lambda c: drop_namespace(c, "uts")
        ),
        "domainname",
    ),
    (
        "mount-no-type",
        lambda c: c["mounts"].append({"destination": "/tmp", "source": "tmpfs"}),
        "mounts[7].type",
    ),
    (
        "mount-unknown-fs",
        lambda c: c["mounts"].append({"destination": "/tmp", "type": "nopefs", "source": "x"}),
        "mounts[7]",
    ),
    (
        "mount-empty-option",
        lambda c: c["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["ro", ""]}
        ),
        "mounts[7].options[1]",
    ),
    (
        "bind-missing-source",
        lambda c: c["mounts"].append(
            {
                "destination": "/tmp",
                "type": "bind",
                "source": "/nonexistent/src",
                "options": ["bind"],
            }
        ),
        "mounts[7].source",
    ),
    (
        "tmpcopyup-not-tmpfs",
        lambda c: c["mounts"].append(
            {"destination": "/tmp", "type": "proc", "source": "proc", "options": ["tmpcopyup"]}
        ),
        "mounts[7].options",
    ),
    (
        "bad-tmpfs-data",
        lambda c: c["mounts"].append(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=banana"]}
        ),
        "mounts[7]",
    ),
]


@pytest.mark.parametrize("patch,field", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input(pyoci, bundle, new_id, patch, field):
    b = bundle("true", patch=patch)
    # A bug here could rename the host (hostname/domainname without a uts namespace): restore.
    uts = {
        name: Path(f"/proc/sys/kernel/{name}").read_text() for name in ("hostname", "domainname")
    }
    try:
        create_fails(pyoci, b, new_id(), field)
    finally:
        for name, value in uts.items():
            path = Path(f"/proc/sys/kernel/{name}")
            if path.read_text() != value:
                path.write_text(value)
                pytest.fail(f"pyoci changed the host's {name} (restored)")
    json.loads(b.config_path.read_text())  # the bundle is intact


def test_ambient_cap_that_cannot_be_raised_is_a_warning(pyoci, bundle, new_id, tmp_path):
    """config.md: a capability that cannot be granted MUST be logged as a warning, and the
    runtime SHOULD NOT fail (`runc spec`'s default config has ambient caps that are not
    inheritable). The permitted+inheritable one is raised, the other is not."""
    caps = {
        "bounding": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL", "CAP_CHOWN"],
    }
    b = bundle(
        "grep CapAmb /proc/self/status",
        process={"capabilities": caps, "user": {"uid": 1000, "gid": 1000}},
    )
    log = tmp_path / "log.json"
    result = pyoci("run", "--bundle", str(b.path), new_id(),
                   global_args=("--log", str(log), "--log-format", "json"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["CapAmb:", f"{1 << 5:016x}"]  # CAP_KILL only
    warnings = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(w["level"] == "warning" and "CAP_CHOWN" in w["msg"] for w in warnings), warnings


def test_relative_mount_destination_is_read_from_the_root(pyoci, bundle, new_id):
    """config.md (1.2+): a relative destination "MUST be interpreted as relative to "/""."""

    def patch(config: dict) -> None:
        config["mounts"].append({"destination": "tmp", "type": "tmpfs", "source": "tmpfs"})

    out = run_ok(pyoci, bundle("grep ' /tmp ' /proc/self/mountinfo | wc -l", patch=patch), new_id())
    assert out.strip() == "1"

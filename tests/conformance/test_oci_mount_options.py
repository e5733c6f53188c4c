"""runtime-spec 1.3.0, config.md "Linux mount options": one test per MUST or SHOULD row.

"Runtimes MUST/SHOULD/MAY implement the following option strings for Linux systems" — the
MAY rows (mand, nomand, tmpcopyup) are not tested. Each option gets its own container, which
prints its /proc/self/mountinfo; the test reads the line of its mount point:

- flags (mount(8)): a tmpfs at /mnt/o with the option; for an option that clears a flag the
  flag is set first in the same list ("nosuid", "suid"), so that the runtime's handling shows.
  Where the kernel shows nothing (loud, silent, iversion...), the test checks that the runtime
  recognised the word: handed to tmpfs as data it would make the mount fail;
- bind and propagation: bind mounts of a host directory holding a submount, and tmpfs mounts
  with propagation options (the shared:/master:/unbindable fields of mountinfo);
- the recursive `r*` options: an `rbind` of a host directory whose submount has the opposite
  attribute; the attribute must reach the submount;
- idmap/ridmap: a container with a user namespace; files owned by host uid 0 and 1000 keep
  those owners inside through the mount's mapping.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from oci_conformance import (
    Lab,
    unescape,
)

# The fixtures (lab, oci_runtime, probe_binary) live in the harness.
pytest_plugins = ["oci_fixtures"]

TARGET = "/mnt/o"


def parse_mountinfo(text: str) -> dict[str, dict]:
    """mountinfo lines of a container's output -> {mountpoint: row} (the last mount wins) and
    `_count` of each mount point under "#<mountpoint>"."""
    rows: dict[str, dict] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 6 or not fields[0].isdigit():
            continue
        point = unescape(fields[4])
        rows["#" + point] = {"n": rows.get("#" + point, {"n": 0})["n"] + 1}
        rows[point] = {
            "options": set(fields[5].split(",")),
            "optional": " ".join(fields[6:]),
            "fstype": right.split()[0],
            "super": set((right.split() + ["", "", ""])[2].split(",")),
        }
    return rows


def _run(lab: Lab, mounts: list[dict], *, userns: bool = False, extra: str = "") -> dict[str, dict]:
    cfg = lab.config(f"{extra}cat /proc/self/mountinfo")
    cfg["mounts"] += mounts
    if userns:
        lab.userns(cfg)
    got = lab.run_ok(cfg)
    rows = parse_mountinfo(got["_out"])
    rows["_out"] = {"text": got["_out"]}
    return rows


def _tmpfs(options: list[str], dest: str = TARGET) -> dict:
    return {
        "destination": dest,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["size=1m", *options],
    }


def _host_tree(lab: Lab, sub_options: str = "") -> str:
    """A host directory `src` with a tmpfs mounted at src/sub (options `sub_options`), in the
    runtime's mount namespace; returns the source path."""
    src = lab.out_dir("src")
    (src / "top-file").write_text("top")
    sub = src / "sub"
    sub.mkdir(exist_ok=True)
    opts = "size=1m" + (f",{sub_options}" if sub_options else "")
    lab.host_mount("-t", "tmpfs", "-o", opts, "tmpfs", target=sub)
    return str(src)


def _mount(rows: dict, point: str) -> dict:
    assert point in rows, f"no mount at {point} inside the container"
    return rows[point]


def _flag(option: str, setup: list[str], check: Callable[[dict], bool], want: str) -> tuple:
    return (option, "flag", setup + [option], check, want)


def has(opt: str) -> Callable[[dict], bool]:
    return lambda m: opt in m["options"]


def lacks(opt: str) -> Callable[[dict], bool]:
    return lambda m: opt not in m["options"]


def has_super(opt: str) -> Callable[[dict], bool]:
    return lambda m: opt in m["super"]


def lacks_super(opt: str) -> Callable[[dict], bool]:
    return lambda m: opt not in m["super"]


def mounted(m: dict) -> bool:
    return m["fstype"] == "tmpfs"


def strict(m: dict) -> bool:
    return "relatime" not in m["options"] and "noatime" not in m["options"]


def not_strict(m: dict) -> bool:
    return "relatime" in m["options"] or "noatime" in m["options"]


# option -> (level, setup options before it, check on the mount, what the check wants)
FLAGS: dict[str, tuple[str, list[str], Callable[[dict], bool], str]] = {
    "async": ("MUST", ["sync"], lacks_super("sync"), "no sync after sync,async"),
    "atime": ("MUST", ["noatime"], lacks("noatime"), "no noatime after noatime,atime"),
    "defaults": ("MUST", [], has("rw"), "a read-write mount"),
    "dev": ("MUST", ["nodev"], lacks("nodev"), "no nodev after nodev,dev"),
    "diratime": (
        "MUST",
        ["nodiratime"],
        lacks("nodiratime"),
        "no nodiratime after nodiratime,diratime",
    ),
    "dirsync": ("MUST", [], has_super("dirsync"), "dirsync in the super options"),
    "exec": ("MUST", ["noexec"], lacks("noexec"), "no noexec after noexec,exec"),
    "iversion": ("MUST", [], mounted, "the word recognised (the mount exists)"),
    "lazytime": ("MUST", [], has_super("lazytime"), "lazytime in the super options"),
    "loud": ("MUST", [], mounted, "the word recognised (the mount exists)"),
    "noatime": ("MUST", [], has("noatime"), "noatime"),
    "nodev": ("MUST", [], has("nodev"), "nodev"),
    "nodiratime": ("MUST", [], has("nodiratime"), "nodiratime"),
    "noexec": ("MUST", [], has("noexec"), "noexec"),
    "noiversion": ("MUST", ["iversion"], mounted, "the word recognised (the mount exists)"),
    "nolazytime": (
        "MUST",
        ["lazytime"],
        lacks_super("lazytime"),
        "no lazytime after lazytime,nolazytime",
    ),
    "norelatime": ("MUST", ["relatime"], mounted, "the word recognised (the mount exists)"),
    "nostrictatime": (
        "MUST",
        ["strictatime"],
        not_strict,
        "relatime or noatime after strictatime,nostrictatime",
    ),
    "nosuid": ("MUST", [], has("nosuid"), "nosuid"),
    # The kernel's default is relatime, and MS_STRICTATIME wins over MS_RELATIME whatever the
    # order: only "recognised, and relatime shown" can be observed.
    "relatime": ("MUST", [], has("relatime"), "relatime"),
    "ro": ("MUST", [], has("ro"), "ro"),
    "rw": ("MUST", ["ro"], has("rw"), "rw after ro,rw"),
    "silent": ("MUST", [], mounted, "the word recognised (the mount exists)"),
    "strictatime": ("MUST", [], strict, "neither relatime nor noatime"),
    "suid": ("MUST", ["nosuid"], lacks("nosuid"), "no nosuid after nosuid,suid"),
    "sync": ("MUST", [], has_super("sync"), "sync in the super options"),
    "nosymfollow": ("SHOULD", [], has("nosymfollow"), "nosymfollow"),
    "symfollow": (
        "SHOULD",
        ["nosymfollow"],
        lacks("nosymfollow"),
        "no nosymfollow after nosymfollow,symfollow",
    ),
}

# recursive option -> (host submount's attribute, check on the submount, what it wants)
RECURSIVE: dict[str, tuple[str, Callable[[dict], bool], str]] = {
    "rro": ("rw", has("ro"), "ro on the submount"),
    "rrw": ("ro", has("rw"), "rw on a submount that was ro"),
    "rnosuid": ("suid", has("nosuid"), "nosuid on the submount"),
    "rsuid": ("nosuid", lacks("nosuid"), "no nosuid on a submount that had it"),
    "rnodev": ("dev", has("nodev"), "nodev on the submount"),
    "rdev": ("nodev", lacks("nodev"), "no nodev on a submount that had it"),
    "rnoexec": ("exec", has("noexec"), "noexec on the submount"),
    "rexec": ("noexec", lacks("noexec"), "no noexec on a submount that had it"),
    "rnoatime": ("relatime", has("noatime"), "noatime on the submount"),
    "ratime": ("noatime", lacks("noatime"), "no noatime on a submount that had it"),
    "rnodiratime": ("diratime", has("nodiratime"), "nodiratime on the submount"),
    "rdiratime": ("nodiratime", lacks("nodiratime"), "no nodiratime on a submount that had it"),
    "rrelatime": ("strictatime", has("relatime"), "relatime on a strictatime submount"),
    # mount_setattr(2) has no "not relatime" of its own: only recognition can be observed.
    "rnorelatime": ("relatime", lambda m: True, "the word recognised (the container runs)"),
    "rstrictatime": ("relatime", strict, "neither relatime nor noatime on the submount"),
    "rnostrictatime": ("strictatime", not_strict, "relatime or noatime on a strictatime submount"),
    "rnosymfollow": ("symfollow", has("nosymfollow"), "nosymfollow on the submount"),
    "rsymfollow": ("nosymfollow", lacks("nosymfollow"), "no nosymfollow on a submount that had it"),
}

QUOTE = (
    '"Runtimes MUST/SHOULD/MAY implement the following option strings for Linux systems" — `{}`: {}'
)


@pytest.mark.parametrize("option", sorted(FLAGS))
def test_flag_option(lab, option):
    """config.md § Linux mount options (MUST): "Runtimes MUST/SHOULD/MAY implement the following
    option strings for Linux systems" (the mount(8) flags; the level is the option's row)."""
    level, setup, check, want = FLAGS[option]
    lab.clause(level, QUOTE.format(option, level))
    rows = _run(lab, [_tmpfs([*setup, option])])
    m = _mount(rows, TARGET)
    assert check(m), (
        f"`{option}`: wanted {want}; mountinfo shows {sorted(m['options'])} / {sorted(m['super'])}"
    )


@pytest.mark.parametrize("option", sorted(RECURSIVE))
def test_recursive_option(lab, option):
    """config.md § Linux mount options (SHOULD): "Runtimes MUST/SHOULD/MAY implement the following
    option strings for Linux systems" (the recursive mount_setattr(2) options, AT_RECURSIVE)."""
    host_attr, check, want = RECURSIVE[option]
    lab.clause("SHOULD", QUOTE.format(option, "SHOULD"))
    src = _host_tree(lab, host_attr)
    rows = _run(
        lab, [{"destination": TARGET, "type": "bind", "source": src, "options": ["rbind", option]}]
    )
    m = _mount(rows, TARGET + "/sub")
    assert check(m), f"`{option}`: wanted {want}; the submount shows {sorted(m['options'])}"


def test_bind(lab):
    """config.md § Linux mount options (MUST): "bind ... Bind mount" — not recursive: a submount of
    the source is not in the container."""
    src = _host_tree(lab)
    rows = _run(
        lab,
        [{"destination": TARGET, "type": "bind", "source": src, "options": ["bind"]}],
        extra="ls /mnt/o; ",
    )
    _mount(rows, TARGET)
    assert "top-file" in rows["_out"]["text"], "the bind mount does not show the source"
    assert TARGET + "/sub" not in rows, "bind (not rbind) carried the source's submount"


def test_rbind(lab):
    """config.md § Linux mount options (MUST): "rbind ... Recursive bind mount" — the source's
    submount is in the container."""
    src = _host_tree(lab)
    rows = _run(lab, [{"destination": TARGET, "type": "bind", "source": src, "options": ["rbind"]}])
    _mount(rows, TARGET)
    _mount(rows, TARGET + "/sub")


def test_remount(lab):
    """config.md § Linux mount options (MUST): "remount" — a second entry for /mnt/o with remount,ro
    changes the existing mount instead of adding one."""
    rows = _run(lab, [_tmpfs([]), _tmpfs(["remount", "ro"])])
    m = _mount(rows, TARGET)
    count = rows["#" + TARGET]["n"]
    assert count == 1 and "ro" in m["options"], (
        f"{count} mount(s) at {TARGET}, the last {sorted(m['options'])}"
    )


def _propagation(m: dict) -> str:
    return m["optional"]


def test_shared(lab):
    """config.md § Linux mount options (MUST): "shared" — the mount is in a peer group."""
    m = _mount(_run(lab, [_tmpfs(["shared"])]), TARGET)
    assert "shared:" in m["optional"], f"propagation fields {m['optional']!r}"


def test_private(lab):
    """config.md § Linux mount options (MUST): "private ... Bind mount propagation" — shared, then
    private: no peer group, no master."""
    m = _mount(_run(lab, [_tmpfs(["shared", "private"])]), TARGET)
    assert "shared:" not in m["optional"] and "master:" not in m["optional"], repr(m["optional"])


def _in_rootfs(lab: Lab, name: str, path: str) -> str:
    """The host path of `path` inside the rootfs of the bundle `name` (not made yet): a bind
    source there is, when the runtime mounts it (before pivot_root, in the container's mount
    namespace), whatever the earlier entries mounted at that path in the container."""
    return str(lab.dir / name / "rootfs" / path.lstrip("/"))


def test_slave(lab):
    """config.md § Linux mount options (MUST): "slave ... Bind mount propagation" — a bind of a
        shared
    mount (a tmpfs the same config mounts first), made slave: it has a master and no peer group."""
    cfg = lab.config("cat /proc/self/mountinfo")
    cfg["mounts"] += [
        _tmpfs(["shared"], "/mnt/p"),
        {
            "destination": TARGET,
            "type": "bind",
            "source": _in_rootfs(lab, "b", "/mnt/p"),
            "options": ["bind", "slave"],
        },
    ]
    rows = parse_mountinfo(lab.run_ok(cfg, name="b")["_out"])
    m = _mount(rows, TARGET)
    assert "master:" in m["optional"] and "shared:" not in m["optional"], repr(m["optional"])


def test_unbindable(lab):
    """config.md § Linux mount options (MUST): "unbindable ... Bind mount propagation" """
    m = _mount(_run(lab, [_tmpfs(["unbindable"])]), TARGET)
    assert "unbindable" in m["optional"], repr(m["optional"])


def _recursive_propagation(lab: Lab, option: str, before: list[str]) -> tuple[dict, dict]:
    src = _host_tree(lab)
    rows = _run(
        lab,
        [
            {
                "destination": TARGET,
                "type": "bind",
                "source": src,
                "options": ["rbind", *before, option],
            }
        ],
    )
    return _mount(rows, TARGET), _mount(rows, TARGET + "/sub")


def test_rshared(lab):
    """config.md § Linux mount options (MUST): "rshared ... Bind mount propagation" — the mount and
        its
    submount are shared."""
    top, sub = _recursive_propagation(lab, "rshared", [])
    assert "shared:" in top["optional"] and "shared:" in sub["optional"], (
        top["optional"],
        sub["optional"],
    )


def test_rprivate(lab):
    """config.md § Linux mount options (MUST): "rprivate ... Bind mount propagation" — rshared then
    rprivate: neither the mount nor its submount has a peer group."""
    top, sub = _recursive_propagation(lab, "rprivate", ["rshared"])
    assert "shared:" not in top["optional"] + sub["optional"], (top["optional"], sub["optional"])


def test_runbindable(lab):
    """config.md § Linux mount options (MUST): "runbindable ... Bind mount propagation" — the mount
        and
    its submount are unbindable."""
    top, sub = _recursive_propagation(lab, "runbindable", [])
    assert "unbindable" in top["optional"] and "unbindable" in sub["optional"], (
        top["optional"],
        sub["optional"],
    )


def test_rslave(lab):
    """config.md § Linux mount options (MUST): "rslave ... Bind mount propagation" — an rbind of a
    shared tree (a tmpfs with a submount, mounted first by the same config), made rslave: the mount
    and its submount have a master."""
    cfg = lab.config("cat /proc/self/mountinfo")
    cfg["mounts"] += [
        _tmpfs(["rshared"], "/mnt/p"),
        _tmpfs(["shared"], "/mnt/p/sub"),
        {
            "destination": TARGET,
            "type": "bind",
            "source": _in_rootfs(lab, "b", "/mnt/p"),
            "options": ["rbind", "rslave"],
        },
    ]
    rows = parse_mountinfo(lab.run_ok(cfg, name="b")["_out"])
    top, sub = _mount(rows, TARGET), _mount(rows, TARGET + "/sub")
    assert "master:" in top["optional"] and "master:" in sub["optional"], (
        top["optional"],
        sub["optional"],
    )


def _idmap_source(lab: Lab, with_submount: bool) -> str:
    src = lab.out_dir("idsrc")
    target = src
    if with_submount:
        sub = src / "sub"
        sub.mkdir()
        lab.host_mount("-t", "tmpfs", "-o", "size=1m,mode=755", "tmpfs", target=sub)
        target = sub
    for name, owner in (("root-file", 0), ("user-file", 1000)):
        path = target / name
        subprocess_touch(lab, path, owner)
    return str(src)


def subprocess_touch(lab: Lab, path, owner: int) -> None:
    """Create a file owned by `owner` in the runtime's mount namespace (a submount may exist only
    there)."""
    import subprocess

    subprocess.run(
        lab.runtime.host_argv(["sh", "-c", f"touch {path} && chown {owner}:{owner} {path}"]),
        check=True,
    )


def _idmapped(lab: Lab, option: str, sub: bool) -> dict[str, str]:
    if not os.path.exists("/proc/self/uid_map"):
        lab.skip("no user namespaces")
    src = _idmap_source(lab, sub)
    where = TARGET + ("/sub" if sub else "")
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    mount = {
        "destination": TARGET,
        "type": "bind",
        "source": src,
        "options": ["rbind", option],
        "uidMappings": mapping,
        "gidMappings": mapping,
    }
    script = (
        f"echo ROOT_FILE=$(stat -c %u:%g {where}/root-file); "
        f"echo USER_FILE=$(stat -c %u:%g {where}/user-file); "
    )
    cfg = lab.config(script)
    cfg["mounts"].append(mount)
    lab.userns(cfg)
    return lab.run_ok(cfg)


def test_idmap(lab):
    """config.md § Linux mount options (SHOULD): "idmap ... Indicates that the mount MUST have an
    idmapping applied ... If uidMappings or gidMappings are specified for the mount, the runtime
    MUST use those values for the mount's mapping."

    Container with a user namespace 0 -> 100000; the bind mount's mapping is the same: files owned
    by host 0 and 1000 show as 0:0 and 1000:1000 (without it: 65534)."""
    got = _idmapped(lab, "idmap", sub=False)
    seen = (got.get("ROOT_FILE"), got.get("USER_FILE"))
    assert seen == ("0:0", "1000:1000"), f"owners inside: {seen}"


def test_ridmap(lab):
    """config.md § Linux mount options (SHOULD): "ridmap ... Indicates that the mount MUST have an
    idmapping applied, and the mapping is also applied recursively"

    As idmap, for files on a submount of the source."""
    got = _idmapped(lab, "ridmap", sub=True)
    seen = (got.get("ROOT_FILE"), got.get("USER_FILE"))
    assert seen == ("0:0", "1000:1000"), f"owners on the submount inside: {seen}"

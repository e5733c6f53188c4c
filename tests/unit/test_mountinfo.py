"""pyoci.linux.mountinfo and /proc/PID/cgroup parsing: the one reader of each format that the
cgroup layout, the cgroup binds, the rootfs's parent mount and the host mounts all use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci.linux import mountinfo
from pyoci.linux.cgroups import parse_proc_cgroup, proc_cgroup

SETTINGS = settings(database=None, deadline=None, max_examples=200)

LINES = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
31 22 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:8 master:3 - cgroup cgroup rw,cpu,cpuacct
40 27 0:40 /sub/dir /mnt/with\\040space\\011tab rw - tmpfs my\\134src rw,mode=755
41 40 0:41 / /mnt/none rw unbindable - tmpfs none
"""


def test_fields_of_each_line() -> None:
    proc, root, cpu, spaced, bare = mountinfo.parse(LINES)
    assert (proc.mount_id, proc.parent_id, proc.point, proc.fstype) == (22, 27, "/proc", "proc")
    assert (proc.options, proc.optional, proc.source, proc.super_options) == (
        "rw,relatime",
        [],
        "proc",
        "rw",
    )
    assert root.optional == ["shared:1"]
    assert root.super_options == "rw,errors=remount-ro"
    assert cpu.optional == ["shared:8", "master:3"]
    assert cpu.super_options == "rw,cpu,cpuacct"
    assert spaced.root == "/sub/dir"
    assert spaced.point == "/mnt/with space\ttab"
    assert spaced.source == "my\\src"
    assert bare.optional == ["unbindable"]
    assert bare.super_options == ""


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("plain", "plain"),
        ("a\\040b", "a b"),
        ("a\\011b\\012c", "a\tb\nc"),
        ("back\\134slash", "back\\slash"),
        ("\\134040", "\\040"),  # an escaped backslash followed by digits stays literal
        ("short\\04", "short\\04"),  # not three octal digits: left as it is
        ("eight\\089", "eight\\089"),
    ],
)
def test_unescape(field: str, text: str) -> None:
    assert mountinfo.unescape(field) == text


def _escape(path: str) -> str:
    """What the kernel's seq_escape does to a mount point (fs/proc_namespace.c: ` \\t\\n\\\\`)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
def test_unescape_reverses_the_kernels_escape(path: str) -> None:
    assert mountinfo.unescape(_escape(path)) == path


@SETTINGS
@given(st.lists(st.text(alphabet=" \t\n\\abc/-", min_size=1), min_size=1, max_size=5))
def test_any_escaped_point_parses_back(points: list[str]) -> None:
    text = "".join(
        f"{i} 1 0:1 / /{_escape(p)} rw shared:{i} - tmpfs {_escape(p)} rw\n"
        for i, p in enumerate(points)
    )
    mounts = mountinfo.parse(text)
    assert [m.point for m in mounts] == [f"/{p}" for p in points]
    assert [m.source for m in mounts] == points
    assert all(m.optional == [f"shared:{i}"] for i, m in enumerate(mounts))


def test_lines_that_are_not_mountinfo_are_skipped() -> None:
    text = "hello\n22 27 0:21 / /proc rw - proc proc rw\nx y z - a b c\n\n"
    assert [m.point for m in mountinfo.parse(text)] == ["/proc"]


def test_covering_and_under() -> None:
    mounts = mountinfo.parse(LINES)
    assert mountinfo.covering(mounts, "/mnt/with space\ttab/x").mount_id == 40
    assert mountinfo.covering(mounts, "/proc").mount_id == 22
    assert mountinfo.covering(mounts, "/procfs").mount_id == 27  # a prefix is not a parent
    assert mountinfo.covering(mounts, "/etc").point == "/"
    assert [m.mount_id for m in mountinfo.under(mounts, "/mnt")] == [40, 41]
    assert [m.mount_id for m in mountinfo.under(mounts, "/mnt/none/")] == [41]
    assert len(mountinfo.under(mounts, "/")) == len(mounts)
    assert mountinfo.under(mounts, "/mn") == []


def test_stacked_mounts_the_last_covers() -> None:
    mounts = mountinfo.parse("1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /x rw - tmpfs b rw\n"
                             "3 2 0:3 / /x rw - tmpfs c rw\n")  # fmt: skip
    assert mountinfo.covering(mounts, "/x/y").mount_id == 3


def test_this_process_mountinfo() -> None:
    """The real file: one Mount per line, a `/` among them, every point absolute."""
    mounts = mountinfo.read()
    assert any(m.point == "/" for m in mounts)
    assert all(m.point.startswith("/") for m in mounts)
    assert len(mounts) == len(Path("/proc/self/mountinfo").read_text().splitlines())


def test_parse_proc_cgroup() -> None:
    text = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/init.scope\n0::/a:b\n"
    assert parse_proc_cgroup(text) == {
        "cpu,cpuacct": "/user.slice",
        "name=systemd": "/init.scope",
        "": "/a:b",  # a path may hold a colon
    }


def test_proc_cgroup_of_this_process() -> None:
    ours = proc_cgroup()
    assert ours == proc_cgroup(os.getpid())
    assert all(path.startswith("/") for path in ours.values())
    with pytest.raises(FileNotFoundError):
        proc_cgroup(2**22 + 1)  # above pid_max's ceiling: no such process

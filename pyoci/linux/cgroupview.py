"""The host's cgroup hierarchies, seen again from inside `ip netns exec`.

`ip netns exec NS cmd` runs cmd in a mount namespace of its own where /sys is a fresh sysfs
(so that /sys/class/net shows NS's devices): /sys/fs/cgroup is an empty directory there and a
runtime finds no cgroup hierarchy (runc fails the same way). When pyoci finds no cgroup mount
under /sys/fs/cgroup, runs as root, and its mount namespace is not pid 1's, `restore()` mounts
what pid 1 has under /sys/fs/cgroup again, in pyoci's own mount namespace, with the same
options: a cgroup mount naming the same controllers attaches to the same hierarchy, so the
container's cgroups are the host's. Nothing outside this mount namespace changes.
"""

from __future__ import annotations

import os

ROOT = "/sys/fs/cgroup"
_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8, "relatime": 1 << 21}


def restore() -> bool:
    """Mount pid 1's /sys/fs/cgroup hierarchies here; True if anything was mounted."""
    if os.geteuid() != 0:
        return False
    try:
        with open("/proc/1/mountinfo") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            own = f.read().splitlines()
    except OSError:
        return False
    # Mount ids are global and a new mount namespace gets copies with new ids: the same root
    # mount id means pid 1's namespace itself, where nothing is ever mounted. (Its
    # /proc/1/ns/mnt may be unreadable: that needs ptrace access to pid 1.)
    if _root_mount_id(lines) == _root_mount_id(own):
        return False
    wanted = []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 6 or len(rest) < 3:
            continue
        point, fstype = fields[4], rest[0]
        if point == ROOT or point.startswith(ROOT + "/"):
            wanted.append((point, fstype, fields[5], rest[2]))
    if not any(fstype in ("cgroup", "cgroup2") for _, fstype, _, _ in wanted):
        return False
    from pyoci.linux import syscalls as sc

    mounted = False
    try:
        for point, fstype, per_mount, options in wanted:
            if fstype not in ("tmpfs", "cgroup", "cgroup2"):
                continue
            flags = 0
            for opt in per_mount.split(","):
                flags |= _FLAGS.get(opt, 0)
            if fstype == "tmpfs":
                flags &= ~_FLAGS["ro"]  # mount points are made in it below
            data = ",".join(o for o in options.split(",") if o not in ("rw", "ro"))
            os.makedirs(point, exist_ok=True)
            sc.mount(fstype, point, fstype, flags, data or None)
            mounted = True
    except OSError:
        return mounted
    return mounted


def _root_mount_id(lines: list[str]) -> str | None:
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/":
            return fields[0]  # the last "/" entry is the one a lookup sees; any one will do
    return None

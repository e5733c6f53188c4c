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
    from pyoci.linux import mountinfo, sysbind

    if os.geteuid() != 0:
        return False
    try:
        theirs, own = mountinfo.read(1), mountinfo.read()
    except OSError:
        return False
    # Mount ids are global and a new mount namespace gets copies with new ids: the same root
    # mount id means pid 1's namespace itself, where nothing is ever mounted. (Its
    # /proc/1/ns/mnt may be unreadable: that needs ptrace access to pid 1.)
    if _root_mount_id(theirs) == _root_mount_id(own):
        return False
    wanted = [
        (m.point, m.fstype, m.options, m.super_options) for m in mountinfo.under(theirs, ROOT)
    ]
    if not any(fstype in ("cgroup", "cgroup2") for _, fstype, _, _ in wanted):
        return False

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
            sysbind.mount(fstype, point, fstype, flags, data or None)
            mounted = True
    except OSError:
        return mounted
    return mounted


def _root_mount_id(mounts: list) -> int | None:
    """The id of a "/" mount (the last one is what a lookup sees; any one will do)."""
    return next((m.mount_id for m in mounts if m.point == "/"), None)

"""Parsing what a container prints about itself."""

from __future__ import annotations

import subprocess
from pathlib import Path


class MountEntry:
    """One /proc/self/mountinfo line: per-mount options and the filesystem's super options."""

    def __init__(self, line: str) -> None:
        fields = line.split()
        sep = fields.index("-")
        self.line = line
        self.root = fields[3]
        self.mount_point = fields[4]
        self.options = set(fields[5].split(","))
        self.fstype = fields[sep + 1]
        self.source = fields[sep + 2]
        self.super_options = set(fields[sep + 3].split(",")) if len(fields) > sep + 3 else set()

    def __repr__(self) -> str:
        return f"MountEntry({self.line!r})"


def parse_mountinfo(text: str) -> dict[str, MountEntry]:
    """mount point → the entry mounted last on it (the one a path lookup sees)."""
    entries: dict[str, MountEntry] = {}
    for line in text.splitlines():
        if " - " in line:
            entry = MountEntry(line)
            entries[entry.mount_point] = entry
    return entries


def one_line_error(stderr: str) -> str:
    """The single `pyoci: ...` line a failed command prints; fails the test otherwise."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("pyoci: "), lines[0]
    return lines[0]


def give_rootfs_to(bundle, host_id: int) -> None:
    """Make a private rootfs usable by a user namespace whose root is host uid/gid `host_id`:
    owned by it, and every directory above the bundle searchable (pytest's tmp dirs and a CI
    clone's temp dir are 0700)."""
    subprocess.run(["chown", "-R", f"{host_id}:{host_id}", str(bundle.rootfs)], check=True)
    for parent in [bundle.path, *bundle.path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


# Runs the rest of argv with a pure cgroup-v2 view of this host: a private mount namespace in
# which /sys/fs/cgroup is the cgroup2 hierarchy alone (the v1 mounts unmounted), exactly what
# pyoci finds on a v2 host.
PURE_V2_VIEW = (
    "unshare", "--mount", "--propagation", "private", "sh", "-c",
    'umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" "$@"',
)  # fmt: skip

# ... and a cgroup-v1 view: the hybrid host without its cgroup2 mount, what crun 1.8 needs (it
# refuses a hybrid layout whose cgroup2 has controllers). tools/bench.py runs crun under it.
V1_VIEW = (
    "unshare", "--mount", "--propagation", "private", "sh", "-c",
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"',
)  # fmt: skip

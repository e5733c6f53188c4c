"""Bind remounts: changing the per-mount flags of a mount that exists, keeping its locked ones.

Why a module of its own: `mounts` (the `mounts[]` entries), `cgroupfs` (the cgroup mounts) and
`rootfs` (read-only root, masked paths) all remount, and `mounts` itself needs `cgroupfs`;
this one sits below all three and needs only the constants.
"""

from __future__ import annotations

import os

from pyoci.linux import syscalls as sc

# Flags a bind remount may change; the rest of the parsed flags only matter to mount(2).
REMOUNT_MASK = (
    sc.MS_RDONLY
    | sc.MS_NOSUID
    | sc.MS_NODEV
    | sc.MS_NOEXEC
    | sc.MS_SYNCHRONOUS
    | sc.MS_MANDLOCK
    | sc.MS_DIRSYNC
    | sc.MS_NOSYMFOLLOW
    | sc.MS_NOATIME
    | sc.MS_NODIRATIME
    | sc.MS_RELATIME
    | sc.MS_STRICTATIME
    | sc.MS_LAZYTIME
)

# statvfs f_flag bits (ST_*) that a user namespace locks on a mount, as MS_* flags.
LOCKED_ST_FLAGS = [
    (1, sc.MS_RDONLY),
    (2, sc.MS_NOSUID),
    (4, sc.MS_NODEV),
    (8, sc.MS_NOEXEC),
    (1024, sc.MS_NOATIME),
    (2048, sc.MS_NODIRATIME),
    (4096, sc.MS_RELATIME),
]


def existing_locked_flags(path: str) -> int:
    """Flags of the mount at `path` that a remount in a user namespace must keep."""
    st_flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in LOCKED_ST_FLAGS if st_flags & st)


_ATIME_FLAGS = sc.MS_NOATIME | sc.MS_RELATIME | sc.MS_STRICTATIME | sc.MS_NODIRATIME


def remount_bind(target: str, flags: int, cleared: int = 0) -> None:
    """MS_REMOUNT|MS_BIND with the per-mount flags added to the mount's existing ones (a
    read-only /proc/bus stays nosuid,nodev,noexec), except those the options clear and the
    atime mode when the options set one; retry keeping the locked flags (EPERM in a user
    namespace when a flag of the source mount would be cleared)."""
    from pyoci.linux import sysbind

    flags &= REMOUNT_MASK
    existing = existing_locked_flags(target) & ~cleared
    if flags & _ATIME_FLAGS:
        existing &= ~_ATIME_FLAGS
    flags |= existing | sc.MS_REMOUNT | sc.MS_BIND
    try:
        sysbind.mount(None, target, None, flags, None)
    except PermissionError:
        sysbind.mount(None, target, None, flags | existing_locked_flags(target), None)

"""Resolve and create paths inside the container's rootfs without ever leaving it.

A rootfs is untrusted: `/etc` in it may be a symlink to the host's `/etc`. Every path pyoci
mounts onto, creates or masks is walked with openat2(RESOLVE_IN_ROOT), so the kernel resolves
`..` and symlinks as if the rootfs were `/`; the result is an O_PATH fd, and mounts target
`/proc/self/fd/N` (the fix runc adopted for CVE-2021-30465). Missing components are created
one name at a time with mkdirat/openat(O_EXCL) relative to an fd already known to be inside.
"""

from __future__ import annotations

import os

from pyoci.linux.syscalls import RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, openat2

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open `path` as seen from inside the root; raises FileNotFoundError if missing."""
    return openat2(root_fd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, _RESOLVE)


def make_in_root(root_fd: int, path: str, is_file: bool = False, mode: int = 0o755) -> int:
    """Create `path` (parents as directories, the last as a dir or an empty file) inside the
    root if missing, and return an O_PATH fd to it."""
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    parts = [p for p in path.split("/") if p and p != "."]
    parent_fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            try:
                child_fd = open_in_root(root_fd, prefix)
            except FileNotFoundError:
                # Create one name under a directory already resolved inside the root; a
                # dangling symlink here makes mkdir fail with EEXIST rather than follow it.
                if i == len(parts) - 1 and is_file:
                    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                    os.close(os.open(name, flags, 0o644, dir_fd=parent_fd))
                else:
                    os.mkdir(name, mode, dir_fd=parent_fd)
                child_fd = open_in_root(root_fd, prefix)
            os.close(parent_fd)
            parent_fd = child_fd
        return parent_fd
    except BaseException:
        os.close(parent_fd)
        raise


def fd_path(fd: int) -> str:
    """The magic-link path the kernel resolves to exactly this fd's file."""
    return f"/proc/self/fd/{fd}"

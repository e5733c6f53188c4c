"""Resolve and create paths inside the container's rootfs without ever leaving it.

A rootfs is untrusted: `/etc` in it may be a symlink to the host's `/etc`. Every path pyoci
mounts onto, creates or masks is walked with openat2(RESOLVE_IN_ROOT), so the kernel resolves
`..` and symlinks as if the rootfs were `/`; the result is an O_PATH fd, and mounts target
`/proc/self/fd/N` (the fix runc adopted for CVE-2021-30465). Missing components are created
one name at a time with mkdirat/openat(O_EXCL) relative to an fd already known to be inside.
"""

from __future__ import annotations

import os

from pyoci.linux import syscalls as sc

_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open `path` as seen from inside the root; raises FileNotFoundError if missing."""
    from pyoci.linux import sysbind

    return sysbind.openat2(root_fd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, _RESOLVE)


def _normalize(parts: list[str]) -> list[str]:
    """Lexically clean path parts; `..` stops at the root, as RESOLVE_IN_ROOT does."""
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return out


def make_in_root(root_fd: int, path: str, is_file: bool = False, mode: int = 0o755) -> int:
    """Create `path` (parents as directories, the last as a dir or an empty file) inside the
    root if missing, and return an O_PATH fd to it.

    A component that is a dangling symlink is followed *inside* the root (its target is
    created there), like runc's securejoin MkdirAll: `/mnt -> /host/dir` in a rootfs makes
    `<rootfs>/host/dir`, never the host's /host/dir.
    """
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    # Walk one name at a time as the kernel would: `done` is where we are, as the kernel
    # resolved it (real names below the root), so `..` and relative link targets are taken
    # from there, never from how the path was spelled.
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    # Usually only the last names are missing: start from the deepest prefix that exists
    # (one kernel lookup and one readlink instead of one each per name).
    if ".." not in todo:
        for cut in range(len(todo) - 1, 0, -1):
            try:
                fd = open_in_root(root_fd, "/".join(todo[:cut]), os.O_PATH | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                done = _real_parts(root_fd, fd, todo[:cut])
            finally:
                os.close(fd)
            todo = todo[cut:]
            break
    while todo:
        name = todo.pop(0)
        if name == "..":
            done = done[:-1]  # `done` holds no symlinks: lexical is right here
            continue
        here = "/".join(done) or "."
        try:
            fd = open_in_root(root_fd, f"{here}/{name}")
        except FileNotFoundError:
            fd = -1
        if fd >= 0:  # exists (through any symlink): continue from where it really is
            try:
                done = _real_parts(root_fd, fd, [*done, name])
            finally:
                os.close(fd)
            continue
        parent_fd = open_in_root(root_fd, here, os.O_PATH | os.O_DIRECTORY)
        try:
            try:
                link = os.readlink(name, dir_fd=parent_fd)
            except OSError:
                link = None  # missing (or not a symlink): create it
            if link is not None:  # dangling: follow it inside the root
                hops += 1
                if hops > 40:
                    raise OSError(40, "too many levels of symbolic links", path)
                if link.startswith("/"):
                    done = []
                todo[0:0] = [p for p in link.split("/") if p not in ("", ".")]
                continue
            if not todo and is_file:
                flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                os.close(os.open(name, flags, 0o644, dir_fd=parent_fd))
            else:
                os.mkdir(name, mode, dir_fd=parent_fd)
            done.append(name)
        finally:
            os.close(parent_fd)
    return open_in_root(root_fd, "/".join(done) or ".")


def _real_parts(root_fd: int, dir_fd: int, spelled: list[str]) -> list[str]:
    """`dir_fd`'s path below the root, as components (what `..` in a link is relative to);
    `spelled` if the kernel's names cannot be compared."""
    try:
        root, where = os.readlink(fd_path(root_fd)).rstrip("/"), os.readlink(fd_path(dir_fd))
    except OSError:
        return spelled
    if where == root or where == root + "/":
        return []
    if not where.startswith(root + "/"):
        return spelled
    return [p for p in where[len(root) + 1 :].split("/") if p]


def fd_path(fd: int) -> str:
    """The magic-link path the kernel resolves to exactly this fd's file."""
    return f"/proc/self/fd/{fd}"

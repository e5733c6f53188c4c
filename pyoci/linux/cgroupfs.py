"""The `cgroup` mount type: show the container its own cgroups under the destination.

On a pure cgroup v2 host that is one `cgroup2` mount when the container is at the root of its
cgroup namespace (a new one), where such a mount shows exactly its cgroup. Otherwise a cgroup2
mount would show more (the whole host hierarchy, without a cgroup namespace) or is refused
(EPERM in a user namespace without a cgroup namespace of its own, EBUSY): then, as runc falls
back, the container's own cgroup2 directory is bind-mounted at the destination instead.
On v1 and hybrid hosts (v1 controllers plus cgroup2 at `unified`), mounting "cgroup" would try
to attach every controller to one new hierarchy, which fails; like runc, pyoci mounts a tmpfs
at the destination and bind-mounts the container's directory of each host hierarchy under it
(`cpu`, `memory`, ..., `unified`). Binds are read-only when the mount asks (`ro`).
"""

from __future__ import annotations

import errno
import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc
from pyoci.linux.cgroups import CGROUP_ROOT, cgroup_mounts, mounts, proc_cgroup
from pyoci.linux.paths import fd_path, make_in_root
from pyoci.linux.remount import remount_bind


def is_unified_host() -> bool:
    """True when /sys/fs/cgroup itself is cgroup2 (no v1 controllers at all)."""
    return mounts()[1] == CGROUP_ROOT


def plan_cgroup_binds(paths: dict[str, str] | None = None) -> list[tuple[str, str]] | None:
    """For a v1/hybrid host, the (host dir, name) pairs to bind under the destination; on a
    pure v2 host one pair, (the cgroup2 directory, ""), bound at the destination itself when
    a cgroup2 mount is not the container's own view (`mount_cgroupfs`). `paths` maps each
    hierarchy's controller list to the container's cgroup (default: the caller's own, which
    the container inherits)."""
    dirs = _hierarchy_dirs(paths or proc_cgroup())
    if is_unified_host():
        found = [host_dir for host_dir, _, key in dirs if key == ""]
        return [(found[-1], "")] if found else None
    return [(host_dir, name) for host_dir, name, _ in dirs]


def _hierarchy_dirs(paths: dict[str, str]) -> list[tuple[str, str, str]]:
    """(host dir, mount point name, key: '' for cgroup2) of each hierarchy mounted under
    /sys/fs/cgroup that `paths` names."""
    binds = []
    for m in cgroup_mounts():
        fstype, mount_root, mountpoint = m.fstype, m.root, m.point
        if os.path.dirname(mountpoint) != CGROUP_ROOT and not (
            mountpoint == CGROUP_ROOT and fstype == "cgroup2"  # a pure v2 host
        ):
            continue
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            key = ",".join(
                o
                for o in m.super_options.split(",")
                if o not in ("rw", "ro")
                and not o.startswith("xattr")
                and o not in ("nsdelegate", "noprefix", "clone_children", "cpuset_v2_mode")
                and not o.startswith("release_agent")
            )
        else:
            continue
        path = paths.get(key)
        if path is None:
            continue
        rel = os.path.relpath(path, mount_root) if path.startswith(mount_root) else path.lstrip("/")
        host_dir = os.path.normpath(os.path.join(mountpoint, rel))
        binds.append((host_dir, os.path.basename(mountpoint), key))
    return binds


def process_cgroup_dirs(pid: int) -> tuple[list[str], str | None]:
    """Host directories of every cgroup `pid` is in that differ from ours, as (v1 dirs, the
    cgroup2 dir): where an exec'd process must go to share the container's limits."""
    theirs, ours = proc_cgroup(pid), proc_cgroup()
    if is_unified_host():
        path = theirs.get("")
        v2 = os.path.join(CGROUP_ROOT, path.lstrip("/")) if path and path != ours.get("") else None
        return [], v2
    differing = {k: v for k, v in theirs.items() if ours.get(k) != v}
    v1_dirs, v2_dir = [], None
    for host_dir, _, key in _hierarchy_dirs(differing) if differing else []:
        if key == "":
            v2_dir = host_dir
        else:
            v1_dirs.append(host_dir)
    return v1_dirs, v2_dir


def _at_cgroupns_root() -> bool:
    """The calling process is at the root of its cgroup namespace in the cgroup2 hierarchy:
    a cgroup2 mount made now shows exactly its cgroup. (The container's cgroup is never the
    host's root: `create` refuses a cgroup that holds processes.)"""
    return proc_cgroup().get("") == "/"


def _mount_unified(root_fd: int, op, flags: int) -> None:
    """A pure v2 host: cgroup2 at the root of the container's own cgroup namespace, else (or
    when that is refused) a bind of its cgroup2 directory."""
    from pyoci.linux import sysbind

    host_dir = op.cgroup_binds[0][0]
    target_fd = make_in_root(root_fd, op.destination)
    try:
        target = fd_path(target_fd)
        if _at_cgroupns_root():
            try:
                sysbind.mount("cgroup2", target, "cgroup2", flags | (op.flags & sc.MS_RDONLY), None)
                return
            except OSError as err:
                if err.errno not in (errno.EPERM, errno.EBUSY):
                    raise PyociError(
                        f"{op.path}: mount cgroup on {op.destination}: {err.strerror.lower()}",
                        err.errno,
                    ) from None
        try:
            sysbind.mount(host_dir, target, None, sc.MS_BIND | sc.MS_REC, None)
        except OSError as err:
            raise PyociError(
                f"{op.path}: bind {host_dir} to {op.destination}: {err.strerror.lower()}",
                err.errno,
            ) from None
    finally:
        os.close(target_fd)
    fd = make_in_root(root_fd, op.destination)
    try:
        remount_bind(fd_path(fd), flags | (op.flags & sc.MS_RDONLY))
    finally:
        os.close(fd)


def mount_cgroupfs(root_fd: int, op) -> None:
    """Mount the cgroup view planned by `plan_cgroup_binds` at op.destination."""
    from pyoci.linux import sysbind

    flags = op.flags & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RELATIME)
    if op.cgroup_binds is not None and [name for _, name in op.cgroup_binds] == [""]:
        _mount_unified(root_fd, op, flags)
        return
    target_fd = make_in_root(root_fd, op.destination)
    try:
        target = fd_path(target_fd)
        covered_mode = os.fstat(target_fd).st_mode & 0o7777
        try:
            if op.cgroup_binds is None:
                sysbind.mount("cgroup2", target, "cgroup2", flags | (op.flags & sc.MS_RDONLY), None)
                return
            sysbind.mount("tmpfs", target, "tmpfs", flags, "mode=755")
            # As runc: the tmpfs root keeps the mode of the directory it covers (sysfs's 555).
            fd = make_in_root(root_fd, op.destination)
            try:
                os.chmod(fd_path(fd), covered_mode)
            finally:
                os.close(fd)
        except OSError as err:
            raise PyociError(
                f"{op.path}: mount cgroup on {op.destination}: {err.strerror.lower()}", err.errno
            ) from None
    finally:
        os.close(target_fd)
    for host_dir, name in op.cgroup_binds:
        sub = os.path.join(op.destination, name)
        fd = make_in_root(root_fd, sub)
        try:
            sysbind.mount(host_dir, fd_path(fd), None, sc.MS_BIND | sc.MS_REC, None)
        except OSError as err:
            raise PyociError(
                f"{op.path}: bind {host_dir} to {sub}: {err.strerror.lower()}", err.errno
            ) from None
        finally:
            os.close(fd)
        fd = make_in_root(root_fd, sub)
        try:
            remount_bind(fd_path(fd), flags | (op.flags & sc.MS_RDONLY))
        finally:
            os.close(fd)
        if "," in name:  # comounted controllers: cpu -> cpu,cpuacct, as on the host
            for alias in name.split(","):
                alias_fd = make_in_root(root_fd, op.destination)
                try:
                    os.symlink(name, alias, dir_fd=alias_fd)
                except FileExistsError:
                    pass
                finally:
                    os.close(alias_fd)
    if op.flags & sc.MS_RDONLY:
        fd = make_in_root(root_fd, op.destination)
        try:
            sysbind.mount(None, fd_path(fd), None, sc.MS_REMOUNT | sc.MS_RDONLY | flags, "mode=755")
        finally:
            os.close(fd)

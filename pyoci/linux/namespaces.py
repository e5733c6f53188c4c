"""Namespaces: which to create, which to join, in which order, and the uid/gid maps.

Decided in the parent (`plan_namespaces`): every `path` is opened there, so a bad path fails
`create` before any fork, and checked to be a namespace *of the declared type* (NS_GET_NSTYPE).
Executed in stage 1: join the user namespace (or create it and wait for the parent to write
the maps), then join the others, then unshare the rest in one call; the pid and time
namespaces only apply to children, hence the second fork.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc

CLONE_FLAG = {
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "mount": sc.CLONE_NEWNS,
    "ipc": sc.CLONE_NEWIPC,
    "uts": sc.CLONE_NEWUTS,
    "user": sc.CLONE_NEWUSER,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}
# setns order after the user namespace: mount last, so the paths of the others still resolve.
JOIN_ORDER = ("ipc", "uts", "network", "pid", "cgroup", "time", "mount")
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), ioctl on a namespace fd


class NamespacePlan:
    """What stage 1 does: fds to join (type → fd) and the flags to unshare."""

    def __init__(self) -> None:
        self.user_fd: int | None = None
        self.new_user = False
        self.join: list[tuple[str, int]] = []
        self.unshare_flags = 0  # all new namespaces but cgroup: stage 1 unshares these
        self.new_cgroup = False  # the init unshares it, once inside the container's cgroups
        self.time_offsets = ""

    def joins(self, ns_type: str) -> bool:
        return any(t == ns_type for t, _ in self.join)

    def close(self) -> None:
        for _, fd in self.join:
            os.close(fd)
        if self.user_fd is not None:
            os.close(self.user_fd)
        self.join = []
        self.user_fd = None


def _open_ns(path: str, ns_type: str, field: str) -> int:
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(f"{field}: {path}: {os.strerror(err.errno).lower()}", err.errno) from None
    try:
        actual = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        os.close(fd)
        raise PyociError(f"{field}: {path} is not a namespace") from None
    if actual != CLONE_FLAG[ns_type]:
        os.close(fd)
        raise PyociError(f"{field}: {path} is not a {ns_type} namespace")
    return fd


def plan_namespaces(spec) -> NamespacePlan:
    plan = NamespacePlan()
    try:
        for i, ns in enumerate(spec.namespaces):
            field = f"linux.namespaces[{i}].path"
            if ns.type == "user":
                if ns.path:
                    plan.user_fd = _open_ns(ns.path, "user", field)
                else:
                    plan.new_user = True
            elif ns.path:
                plan.join.append((ns.type, _open_ns(ns.path, ns.type, field)))
            elif ns.type == "cgroup":
                plan.new_cgroup = True
            else:
                plan.unshare_flags |= CLONE_FLAG[ns.type]
    except BaseException:
        plan.close()
        raise
    plan.join.sort(key=lambda item: JOIN_ORDER.index(item[0]))
    if spec.time_offsets:
        if not spec.has_new("time"):
            raise PyociError("linux.timeOffsets: needs a new time namespace in linux.namespaces")
        lines = []
        for clock, value in spec.time_offsets.items():
            if clock not in ("monotonic", "boottime"):
                raise PyociError(
                    f"linux.timeOffsets.{clock}: unknown clock (monotonic or boottime)"
                )
            lines.append(f"{clock} {int(value.get('secs', 0))} {int(value.get('nanosecs', 0))}\n")
        plan.time_offsets = "".join(lines)
    return plan


def join_and_unshare(plan: NamespacePlan) -> None:
    """Stage 1, after the user namespace: setns each path, then unshare the new ones."""
    from pyoci.linux import sysbind

    for ns_type, fd in plan.join:
        try:
            sysbind.setns(fd, CLONE_FLAG[ns_type])
        except OSError as err:
            raise PyociError(
                f"linux.namespaces: joining the {ns_type} namespace: {err.strerror.lower()}",
                err.errno,
            ) from None
    if plan.unshare_flags:
        try:
            sysbind.unshare(plan.unshare_flags)
        except OSError as err:
            raise PyociError(
                f"linux.namespaces: unshare: {err.strerror.lower()}", err.errno
            ) from None
    if plan.time_offsets:
        # Offsets are writable only until the first process enters the namespace (our child).
        fd = os.open("/proc/self/timens_offsets", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, plan.time_offsets.encode())
        except OSError as err:
            raise PyociError(f"linux.timeOffsets: {err.strerror.lower()}", err.errno) from None
        finally:
            os.close(fd)


def unshare_cgroup() -> None:
    from pyoci.linux import sysbind

    try:
        sysbind.unshare(sc.CLONE_NEWCGROUP)
    except OSError as err:
        raise PyociError(
            f"linux.namespaces: unshare of the cgroup namespace: {err.strerror.lower()}",
            err.errno,
        ) from None


def write_id_maps(pid: int, uid_mappings: list, gid_mappings: list, deny_setgroups: bool) -> None:
    """The parent writes the child's maps (a process cannot map itself beyond its own id).

    As root, the maps are written directly. An unprivileged user may only map its own uid and
    gid, once each (user_namespaces(7)); anything more goes through the setuid helpers
    newuidmap/newgidmap, which check the ranges against /etc/subuid and /etc/subgid.
    """
    if os.geteuid() == 0:
        _write_maps_directly(pid, uid_mappings, gid_mappings, deny_setgroups)
        return
    own_uid = [(m.host_id, m.size) for m in uid_mappings] == [(os.geteuid(), 1)]
    own_gid = [(m.host_id, m.size) for m in gid_mappings] == [(os.getegid(), 1)]
    if own_uid and own_gid:
        _write_maps_directly(pid, uid_mappings, gid_mappings, deny_setgroups=True)
        return
    _map_with_helper("newuidmap", "linux.uidMappings", pid, uid_mappings)
    _map_with_helper("newgidmap", "linux.gidMappings", pid, gid_mappings)


def _write_maps_directly(
    pid: int, uid_mappings: list, gid_mappings: list, deny_setgroups: bool
) -> None:
    try:
        if deny_setgroups:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write("".join(m.line() for m in uid_mappings))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write("".join(m.line() for m in gid_mappings))
    except OSError as err:
        hint = ""
        if os.geteuid() != 0:
            hint = (
                " (an unprivileged user may map only its own uid and gid; other ranges need "
                "newuidmap/newgidmap and entries in /etc/subuid, /etc/subgid)"
            )
        raise PyociError(
            f"linux.uidMappings: writing the id maps of {pid}: {err.strerror.lower()}{hint}",
            err.errno,
        ) from None


def _map_with_helper(helper: str, field: str, pid: int, mappings: list) -> None:
    """newuidmap/newgidmap PID cid hid size ...: they refuse ranges the user does not own."""
    import shutil
    import subprocess

    path = shutil.which(helper) or f"/usr/bin/{helper}"
    if not os.path.exists(path):
        raise PyociError(
            f"{field}: mapping ranges beyond your own id needs {helper} (Debian package uidmap)"
        )
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise PyociError(
            f"{field}: {helper} refused the mapping (ranges must be yours in "
            f"/etc/sub{'u' if helper == 'newuidmap' else 'g'}id): {detail}"
        )

"""/dev inside the container: the default devices, `linux.devices`, and the std symlinks.

mknod where the kernel lets us (root in the host user namespace); inside a user namespace
mknod is refused, so the host's node is bind-mounted onto an empty file instead, as runc and
crun do. Every path is created through `make_in_root`, so a symlinked /dev in the rootfs cannot
make pyoci create nodes on the host.
"""

from __future__ import annotations

import os
import stat

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import fd_path, make_in_root

# The spec's default devices (config-linux.md "Default Devices"): path, major, minor.
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)

DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)

_TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class DeviceOp:
    """One node to create: decided in the parent from the spec or the defaults."""

    __slots__ = ("path", "field", "kind", "major", "minor", "mode", "uid", "gid")

    def __init__(
        self,
        path: str,
        field: str,
        kind: str,
        major: int,
        minor: int,
        mode: int,
        uid: int,
        gid: int,
    ) -> None:
        self.path = path
        self.field = field
        self.kind = kind
        self.major = major
        self.minor = minor
        self.mode = mode
        self.uid = uid
        self.gid = gid


def plan_devices(spec) -> list[DeviceOp]:
    """Defaults first, then linux.devices (which may override a default's mode or owner)."""
    ops: dict[str, DeviceOp] = {}
    for path, major, minor in DEFAULT_DEVICES:
        ops[path] = DeviceOp(path, f"default device {path}", "c", major, minor, 0o666, 0, 0)
    for i, dev in enumerate(spec.devices):
        path = os.path.normpath(dev.path)  # "/dev/x/" names the node x, as for runc
        if path in ("/", "/dev"):
            raise PyociError(f"linux.devices[{i}].path: {dev.path!r} does not name a device node")
        ops[path] = DeviceOp(
            path,
            f"linux.devices[{i}]",
            dev.type,
            dev.major or 0,
            dev.minor or 0,
            0o666 if dev.file_mode is None else dev.file_mode,
            dev.uid or 0,
            dev.gid or 0,
        )
    return list(ops.values())


def create_device(root_fd: int, op: DeviceOp, bind_from_host: bool) -> None:
    """mknod the node (or bind the host's node in a user namespace)."""
    from pyoci.linux import sysbind

    parent = os.path.dirname(op.path)
    name = os.path.basename(op.path)
    dir_fd = make_in_root(root_fd, parent)
    try:
        try:
            existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and op.field.startswith("linux.devices"):
            # config-linux.md, Devices: "If a file already exists at path that does not
            # match the requested device, the runtime MUST generate an error."
            kind = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}[op.kind]
            same = (existing.st_mode & 0o170000) == kind and (
                op.kind == "p" or existing.st_rdev == os.makedev(op.major, op.minor)
            )
            if not same:
                raise PyociError(
                    f"{op.field}.path: {op.path} already exists and is not the requested device"
                )
        if existing is not None:
            os.unlink(name, dir_fd=dir_fd)
        if not bind_from_host:
            try:
                os.mknod(
                    name,
                    _TYPE_BITS[op.kind] | (op.mode & 0o7777),
                    os.makedev(op.major, op.minor),
                    dir_fd=dir_fd,
                )
                os.chown(name, op.uid, op.gid, dir_fd=dir_fd, follow_symlinks=False)
                # mknod's mode is filtered by the umask; set it exactly as configured.
                node_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    os.chmod(fd_path(node_fd), op.mode & 0o7777)
                finally:
                    os.close(node_fd)
                return
            except PermissionError:
                pass  # no CAP_MKNOD over this user namespace: fall back to a bind mount
        os.close(
            os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        )
        file_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            sysbind.mount(op.path, fd_path(file_fd), None, sc.MS_BIND, None)
        finally:
            os.close(file_fd)
    except OSError as err:
        raise PyociError(
            f"{op.field}: creating {op.path}: {err.strerror.lower()}", err.errno
        ) from None
    finally:
        os.close(dir_fd)


def create_symlinks(root_fd: int, with_ptmx: bool) -> None:
    """/dev/fd, /dev/std{in,out,err} and /dev/ptmx → pts/ptmx, unless something is there."""
    dev_fd = make_in_root(root_fd, "/dev")
    try:
        for target, link in DEFAULT_SYMLINKS:
            if link == "/dev/ptmx" and not with_ptmx:
                continue
            name = os.path.basename(link)
            if link == "/dev/ptmx":
                try:
                    os.unlink(name, dir_fd=dev_fd)  # a stale node in the rootfs; the link wins
                except (FileNotFoundError, IsADirectoryError):
                    pass
            try:
                os.symlink(target, name, dir_fd=dev_fd)
            except FileExistsError:
                pass
    finally:
        os.close(dev_fd)

"""Mount options → flags, and performing one `mounts[]` entry inside the rootfs.

The option tables are the single source for parsing and for `pyoci features`. Options are
parsed in the parent (`parse_options`), so a bad option fails `create` before any fork; the
child only executes the resulting `MountOp`.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import fd_path, make_in_root, open_in_root
from pyoci.linux.remount import REMOUNT_MASK, remount_bind

# option → (clear?, flag): the classic mount(2) flags, as runc and crun accept them.
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID),
    "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV),
    "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC),
    "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME),
    "nolazytime": (True, sc.MS_LAZYTIME),
    "iversion": (False, sc.MS_I_VERSION),
    "noiversion": (True, sc.MS_I_VERSION),
    "silent": (False, sc.MS_SILENT),
    "loud": (True, sc.MS_SILENT),
    "symfollow": (True, sc.MS_NOSYMFOLLOW),
    "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# Recursive attributes (mount_setattr(AT_RECURSIVE)): option → (set, clear).
RECURSIVE_OPTIONS: dict[str, tuple[int, int]] = {
    "rro": (sc.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (sc.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (sc.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (sc.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (sc.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, sc.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (sc.MOUNT_ATTR_RELATIME, sc.MOUNT_ATTR__ATIME),
    "rnorelatime": (0, sc.MOUNT_ATTR__ATIME),
    "rnoatime": (sc.MOUNT_ATTR_NOATIME, sc.MOUNT_ATTR__ATIME),
    "ratime": (0, sc.MOUNT_ATTR__ATIME),
    "rstrictatime": (sc.MOUNT_ATTR_STRICTATIME, sc.MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, sc.MOUNT_ATTR__ATIME),
    "rnosymfollow": (sc.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, sc.MOUNT_ATTR_NOSYMFOLLOW),
}

# pyoci-handled extensions (runc and crun accept these too).
EXTENSION_OPTIONS = ("tmpcopyup", "idmap", "ridmap")

_FLAG_NAMES = [
    (sc.MS_RDONLY, "MS_RDONLY"),
    (sc.MS_NOSUID, "MS_NOSUID"),
    (sc.MS_NODEV, "MS_NODEV"),
    (sc.MS_NOEXEC, "MS_NOEXEC"),
    (sc.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"),
    (sc.MS_REMOUNT, "MS_REMOUNT"),
    (sc.MS_MANDLOCK, "MS_MANDLOCK"),
    (sc.MS_DIRSYNC, "MS_DIRSYNC"),
    (sc.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"),
    (sc.MS_NOATIME, "MS_NOATIME"),
    (sc.MS_NODIRATIME, "MS_NODIRATIME"),
    (sc.MS_BIND, "MS_BIND"),
    (sc.MS_MOVE, "MS_MOVE"),
    (sc.MS_REC, "MS_REC"),
    (sc.MS_SILENT, "MS_SILENT"),
    (sc.MS_UNBINDABLE, "MS_UNBINDABLE"),
    (sc.MS_PRIVATE, "MS_PRIVATE"),
    (sc.MS_SLAVE, "MS_SLAVE"),
    (sc.MS_SHARED, "MS_SHARED"),
    (sc.MS_RELATIME, "MS_RELATIME"),
    (sc.MS_STRICTATIME, "MS_STRICTATIME"),
    (sc.MS_LAZYTIME, "MS_LAZYTIME"),
]


def flag_names(flags: int) -> str:
    """`MS_BIND|MS_REC` for error messages, as runc's mountError prints them."""
    names = [name for bit, name in _FLAG_NAMES if flags & bit]
    return "|".join(names) or "0"


class MountOp:
    """One mount, fully decided in the parent: the child only executes it."""

    __slots__ = (
        "path",
        "destination",
        "type",
        "source",
        "flags",
        "data",
        "propagation",
        "rec_set",
        "rec_clr",
        "tmpcopyup",
        "is_bind",
        "is_file",
        "idmap",
        "cgroup_binds",
        "tree_fd",
        "cleared",
    )

    def __init__(self, path: str, destination: str, fstype: str, source: str) -> None:
        self.path = path
        self.destination = destination
        self.type = fstype
        self.source = source
        self.flags = 0
        self.cleared = 0  # flags the options ask to clear (rw, suid, dev, exec...)
        self.data: list[str] = []
        self.propagation: list[int] = []
        self.rec_set = 0
        self.rec_clr = 0
        self.tmpcopyup = False
        self.is_bind = False
        self.is_file = False
        self.idmap = ""
        # For type "cgroup" on a v1/hybrid host: (host directory, name under destination).
        self.cgroup_binds: list[tuple[str, str]] | None = None
        # For idmap/ridmap: a detached id-mapped clone of the source, made by the parent.
        self.tree_fd = -1

    def describe(self, flags: int | None = None) -> str:
        data = ",".join(self.data)
        return (
            f"mount {self.source or 'none'} to {self.destination} (type {self.type or 'none'}, "
            f"flags {flag_names(self.flags if flags is None else flags)}"
            + (f", data {data!r}" if data else "")
            + ")"
        )


def parse_options(mount, bundle: str) -> MountOp:
    """Turn a spec `Mount` into a MountOp; unknown flag-like options become fs data (as the
    kernel's mount(8) does), so `size=`, `mode=`, `newinstance` reach the filesystem."""
    op = MountOp(mount.path, mount.destination, mount.type, mount.source)
    for i, option in enumerate(mount.options):
        if option in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[option]
            if clear:
                op.flags &= ~flag
                op.cleared |= flag
            else:
                op.flags |= flag
        elif option in PROPAGATION_OPTIONS:
            op.propagation.append(PROPAGATION_OPTIONS[option])
        elif option in RECURSIVE_OPTIONS:
            set_, clr = RECURSIVE_OPTIONS[option]
            op.rec_set = (op.rec_set & ~clr) | set_
            op.rec_clr = (op.rec_clr & ~set_) | clr
        elif option == "tmpcopyup":
            op.tmpcopyup = True
        elif option in ("idmap", "ridmap"):
            op.idmap = option
        elif not option:
            raise PyociError(f"{mount.path}.options[{i}]: empty option")
        else:
            op.data.append(option)
    op.is_bind = bool(op.flags & sc.MS_BIND) or mount.type == "bind"
    if op.is_bind:
        op.flags |= sc.MS_BIND
        if not op.source:
            raise PyociError(f"{mount.path}.source: a bind mount needs a source")
        op.source = os.path.normpath(os.path.join(bundle, op.source))
        try:
            op.is_file = not os.path.isdir(op.source)
            os.stat(op.source)
        except OSError as err:
            raise PyociError(
                f"{mount.path}.source: {op.source}: {os.strerror(err.errno).lower()}", err.errno
            ) from None
    elif not mount.type:
        raise PyociError(f"{mount.path}.type: required for a mount that is not a bind mount")
    if op.tmpcopyup:
        if mount.type != "tmpfs":
            raise PyociError(f"{mount.path}.options: tmpcopyup is only valid for tmpfs mounts")
        import shutil  # noqa: F401  (loaded now: the child imports nothing after fork)
        import tempfile  # noqa: F401
    if op.idmap or mount.uid_mappings or mount.gid_mappings:
        if not op.is_bind:
            raise PyociError(
                f"{mount.path}.options: idmapped mounts are only supported for bind mounts"
            )
        op.idmap = op.idmap or "idmap"
    if mount.type == "cgroup":
        from pyoci.linux.cgroupfs import plan_cgroup_binds

        op.cgroup_binds = plan_cgroup_binds()
    return op


def do_mount(root_fd: int, op: MountOp) -> None:
    """Mount one entry onto its destination resolved inside the rootfs."""
    from pyoci.linux import sysbind

    if op.type == "cgroup":
        from pyoci.linux.cgroupfs import mount_cgroupfs  # already loaded by parse_options

        mount_cgroupfs(root_fd, op)
        return
    keep_mode = _covered_dir_mode(root_fd, op)
    try:
        target_fd = make_in_root(root_fd, op.destination, is_file=op.is_bind and op.is_file)
    except OSError as err:  # a mount point that cannot be made: a read-only rootfs, a file
        raise PyociError(
            f"{op.path}.destination: creating {op.destination} in the rootfs: "
            f"{(err.strerror or str(err)).lower()}",
            err.errno or 0,
        ) from None
    try:
        target = fd_path(target_fd)
        data = ",".join(op.data) or None
        if keep_mode is not None and op.flags & sc.MS_RDONLY:
            # A read-only tmpfs cannot be chmod'ed once mounted: say the mode up front.
            data = ",".join([f"mode={keep_mode:o}", *op.data])
            keep_mode = None
        try:
            if op.tree_fd >= 0:
                sysbind.move_mount(op.tree_fd, target_fd)
                os.close(op.tree_fd)
            elif op.is_bind:
                sysbind.mount(op.source, target, None, op.flags & (sc.MS_BIND | sc.MS_REC), None)
            elif op.tmpcopyup:
                _mount_tmpfs_copyup(target, op, data)
            else:
                sysbind.mount(op.source or op.type, target, op.type, op.flags & ~sc.MS_REC, data)
        except OSError as err:
            if err.errno == 19:  # ENODEV
                raise PyociError(
                    f"{op.path}.type: unknown filesystem type {op.type!r}", err.errno
                ) from None
            raise PyociError(
                f"{op.path}: {op.describe()}: {err.strerror.lower()}", err.errno
            ) from None
    finally:
        os.close(target_fd)
    if keep_mode is not None:
        _chmod_mount_root(root_fd, op, keep_mode)
    apply_attributes(root_fd, op)


def clone_bind_sources(ops: list[MountOp]) -> None:
    """Detach a copy of every bind source (open_tree(OPEN_TREE_CLONE), recursive for rbind)
    while still the host's root, for the init to attach with move_mount: a user namespace's
    root may not be able to look the source up (a parent directory it cannot search)."""
    from pyoci.linux import sysbind

    for op in ops:
        if not op.is_bind or op.tree_fd >= 0 or op.type == "cgroup":
            continue
        flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
        if op.flags & sc.MS_REC:
            flags |= sc.AT_RECURSIVE
        try:
            op.tree_fd = sysbind.open_tree(-100, op.source, flags)  # AT_FDCWD
        except OSError as err:
            raise PyociError(
                f"{op.path}.source: {op.source}: {err.strerror.lower()}", err.errno
            ) from None


def _covered_dir_mode(root_fd: int, op: MountOp) -> int | None:
    """A tmpfs without `mode=` over a directory the image has takes that directory's mode, as
    runc does (chmod after the mount; the kernel's default would be 1777, a world-writable
    directory the image never had). None: nothing to do (a created mount point keeps the
    filesystem's default, as with runc)."""
    if op.type != "tmpfs" or op.is_bind or any(d.startswith("mode=") for d in op.data):
        return None
    try:
        fd = open_in_root(root_fd, op.destination)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return st.st_mode & 0o7777 if (st.st_mode & 0o170000) == 0o040000 else None


def _chmod_mount_root(root_fd: int, op: MountOp, mode: int) -> None:
    fd = open_in_root(root_fd, op.destination)  # the new mount's root, not the covered dir
    try:
        os.chmod(fd_path(fd), mode)
    except OSError as err:
        raise PyociError(f"{op.path}: chmod {op.destination}: {err.strerror.lower()}") from None
    finally:
        os.close(fd)


def apply_attributes(root_fd: int, op: MountOp) -> None:
    """Bind remount flags, propagation and recursive attributes, on the *new* mount (the fd
    opened before mounting still points at the covered directory, so open it again)."""
    from pyoci.linux import sysbind

    remount = op.is_bind and op.flags & REMOUNT_MASK
    if not (remount or op.propagation or op.rec_set or op.rec_clr):
        return
    fd = open_in_root(root_fd, op.destination)
    try:
        target = fd_path(fd)
        try:
            if remount:
                remount_bind(target, op.flags, op.cleared)
            for prop in op.propagation:
                sysbind.mount(None, target, None, prop, None)
            if op.rec_set or op.rec_clr:
                sysbind.mount_setattr(
                    fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, op.rec_set, op.rec_clr
                )
        except OSError as err:
            raise PyociError(
                f"{op.path}: setting options on {op.destination}: {err.strerror.lower()}", err.errno
            ) from None
    finally:
        os.close(fd)


def _mount_tmpfs_copyup(target: str, op: MountOp, data: str | None) -> None:
    """tmpfs over a directory, pre-filled with what the directory held (runc's tmpcopyup):
    mount the tmpfs detached-first on a scratch dir, copy, then move it over the target."""
    import shutil
    import tempfile

    from pyoci.linux import sysbind

    scratch = tempfile.mkdtemp(prefix="pyoci-copyup-")
    try:
        sysbind.mount("tmpfs", scratch, "tmpfs", op.flags & ~sc.MS_REC, data)
        shutil.copytree(target, scratch, symlinks=True, dirs_exist_ok=True)
        sysbind.mount(scratch, target, None, sc.MS_MOVE, None)
    finally:
        os.rmdir(scratch)

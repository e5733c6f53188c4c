"""The rootfs in three steps, as runc orders them: prepare (before the pivot), pivot, finalize.

prepare: make `/` rprivate (or `linux.rootfsPropagation`) so nothing we mount leaks back to
the host, and bind the rootfs onto itself so it is a mount point pivot_root accepts.
pivot: `pivot_root(".", ".")` stacks the old root on top of the new one; making it rslave and
detaching it leaves only the container's tree, with no temporary directory to clean up.
finalize (after the pivot, inside the container's view): masked paths, read-only paths, and a
read-only root.
"""

from __future__ import annotations

import os
import stat

from pyoci.errors import PyociError
from pyoci.linux import mountinfo
from pyoci.linux import syscalls as sc
from pyoci.linux.mounts import PROPAGATION_OPTIONS
from pyoci.linux.paths import fd_path, open_in_root
from pyoci.linux.remount import remount_bind


def prepare(rootfs: str, propagation: str | None) -> None:
    """Cut `/` off from the host (rslave, runc's default, or the configured private/slave
    mode), then bind the rootfs onto itself. Shared and unbindable modes are applied after
    the pivot (`set_rootfs_propagation`): made here they would propagate to the host."""
    from pyoci.linux import sysbind

    flags = sc.MS_SLAVE | sc.MS_REC
    if propagation in ("private", "rprivate", "slave", "rslave"):
        flags = PROPAGATION_OPTIONS[propagation]
    try:
        if flags & sc.MS_PRIVATE:
            sysbind.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC, None)
        sysbind.mount(None, "/", None, flags, None)
    except OSError as err:
        raise PyociError(
            f"linux.rootfsPropagation: making / {propagation or 'rslave'}: {err.strerror.lower()}",
            err.errno,
        ) from None
    if not flags & (sc.MS_REC | sc.MS_PRIVATE):
        # Only a plain `slave` leaves mounts below / shared: after rslave (the default, and
        # the first step of `private`) or rprivate none is, and mountinfo need not be read.
        _unshare_parent_mount(rootfs)
    try:
        sysbind.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
        if propagation in ("slave", "private"):
            # The bind joined the peer group of a shared parent: give the future `/` the
            # propagation asked for (a slave keeps receiving the host's mounts, as runc's).
            mode = sc.MS_SLAVE if propagation == "slave" else sc.MS_PRIVATE
            sysbind.mount(None, rootfs, None, mode, None)
    except OSError as err:
        raise PyociError(
            f"root.path: bind mount {rootfs} onto itself: {err.strerror.lower()}", err.errno
        ) from None


def _unshare_parent_mount(rootfs: str) -> None:
    """pivot_root refuses a new root whose mount or parent mount is shared. A non-recursive
    `slave`/`private` rootfsPropagation leaves the mounts below `/` as they were (shared on
    systemd hosts), so the mount holding the rootfs is made a slave here (no longer shared,
    still receiving), in our own mount namespace only (runc's rootfsParentMountPrivate)."""
    from pyoci.linux import sysbind

    parent = mountinfo.covering(mountinfo.read(), rootfs)
    best = parent.point if parent else ""
    if parent and any(o.startswith("shared:") for o in parent.optional):
        try:
            sysbind.mount(None, best, None, sc.MS_SLAVE, None)
        except OSError as err:
            raise PyociError(
                f"linux.rootfsPropagation: making {best} a slave: {err.strerror.lower()}",
                err.errno,
            ) from None


def prepare_in_host_namespace(rootfs: str) -> None:
    """Without a mount namespace: bind the rootfs onto itself (so `root.readonly` remounts
    only it, never the host's filesystem) and make that bind rprivate, so nothing mounted in
    it propagates to the host's other mount namespaces. `/` itself is left alone."""
    from pyoci.linux import sysbind

    try:
        sysbind.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
        sysbind.mount(None, rootfs, None, sc.MS_PRIVATE | sc.MS_REC, None)
    except OSError as err:
        raise PyociError(
            f"root.path: bind mount {rootfs} onto itself: {err.strerror.lower()}", err.errno
        ) from None


def chroot(rootfs: str) -> None:
    """Enter the rootfs of a container that shares the host's mount namespace."""
    try:
        os.chdir(rootfs)
        os.chroot(".")
        os.chdir("/")
    except OSError as err:
        raise PyociError(f"chroot into {rootfs}: {err.strerror.lower()}", err.errno) from None


def set_rootfs_propagation(propagation: str | None) -> None:
    """Shared or unbindable `linux.rootfsPropagation`, applied to the container's `/` once the
    old root is gone, so the mode cannot reach the host."""
    from pyoci.linux import sysbind

    if propagation in ("shared", "rshared", "unbindable", "runbindable"):
        sysbind.mount(None, "/", None, PROPAGATION_OPTIONS[propagation], None)


def pivot(rootfs: str) -> None:
    """Make `rootfs` the root of this mount namespace and drop the old root entirely."""
    from pyoci.linux import sysbind

    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(rootfs)
        sysbind.pivot_root(".", ".")
        # The old root is now stacked on "/"; "." is still the *new* root. Step onto the old
        # one before making it a slave, or the container's own shared mounts lose their
        # propagation (runc's pivotRoot does the same fchdir).
        os.fchdir(old_root)
        sysbind.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
        sysbind.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    except OSError as err:
        raise PyociError(f"pivot_root into {rootfs}: {err.strerror.lower()}", err.errno) from None
    finally:
        os.close(old_root)


def move_root(rootfs: str) -> None:
    """`--no-pivot`: MS_MOVE the rootfs over `/` and chroot (for ramfs roots, as runc)."""
    from pyoci.linux import sysbind

    try:
        os.chdir(rootfs)
        sysbind.mount(rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
        os.chdir("/")
    except OSError as err:
        raise PyociError(
            f"moving {rootfs} to / (--no-pivot): {err.strerror.lower()}", err.errno
        ) from None


def mask_paths(paths: list[str]) -> None:
    """Hide each path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Missing paths are skipped (the spec's paths are host-dependent, e.g. /proc/acpi).

    /dev is the container's by now, and it may be a bind of a directory where `null` is a
    symlink to a sysctl (runc CVE-2025-31133): the mask source is opened once, checked to be
    the 1:3 character device, and bound through that fd; each mask is then made read-only."""
    from pyoci.linux import sysbind

    if not paths:
        return
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null_fd = -1
    try:
        for i, path in enumerate(paths):
            fd = _open_if_present(root_fd, path)
            if fd is None:
                continue
            field = f"linux.maskedPaths[{i}]"
            try:
                target = fd_path(fd)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    sysbind.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, None)  # as runc's
                else:
                    if null_fd < 0:
                        null_fd = _open_dev_null(field)
                    sysbind.mount(fd_path(null_fd), target, None, sc.MS_BIND, None)
                    _remount_top_readonly(root_fd, path, sc.MS_RDONLY)
            except OSError as err:
                raise PyociError(
                    f"{field}: masking {path}: {err.strerror.lower()}", err.errno
                ) from None
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
        if null_fd >= 0:
            os.close(null_fd)


def _open_if_present(root_fd: int, path: str) -> int | None:
    """An O_PATH fd of `path` in the container's /; None if it is missing (masked and
    read-only paths that do not exist are skipped, as runc's)."""
    try:
        return open_in_root(root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _remount_top_readonly(root_fd: int, path: str, flags: int) -> None:
    """Remount the mount just made on `path` read-only, through a new fd: one opened before
    the mount still points at what it covers."""
    fd = open_in_root(root_fd, path)
    try:
        remount_bind(fd_path(fd), flags)
    finally:
        os.close(fd)


def _open_dev_null(field: str) -> int:
    """An O_PATH fd on the container's /dev/null, refused unless it is the null device."""
    try:
        fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(f"{field}: /dev/null: {err.strerror.lower()}", err.errno) from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (1, 3):
        os.close(fd)
        raise PyociError(
            f"{field}: /dev/null in the container is not the null device (char 1:3); "
            "refusing to mask with it"
        )
    return fd


def write_sysctls(sysctls: list[tuple[str, str, str]]) -> None:
    """Write each (field, /proc/sys/... path, value) through the container's procfs, checked
    to be one: /proc is opened and verified (procfs, its root inode), and each file is opened
    beneath it with no symlink, magic link or mount crossing, so a rootfs cannot redirect a
    write to another file (runc CVE-2025-52881)."""
    from pyoci.linux import sysbind

    proc_fd = _open_procfs_root(sysctls[0][0])
    try:
        for field, path, value in sysctls:
            try:
                fd = sysbind.openat2(
                    proc_fd,
                    path.removeprefix("/proc/"),
                    os.O_WRONLY | os.O_CLOEXEC,
                    sc.RESOLVE_BENEATH
                    | sc.RESOLVE_NO_SYMLINKS
                    | sc.RESOLVE_NO_MAGICLINKS
                    | sc.RESOLVE_NO_XDEV,
                )
            except OSError as err:
                raise PyociError(
                    f"{field}: opening {path}: {err.strerror.lower()}", err.errno
                ) from None
            try:
                if sysbind.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                    raise PyociError(f"{field}: {path} is not on the container's procfs")
                os.write(fd, value.encode())
            except OSError as err:
                raise PyociError(
                    f"{field}: writing {path}: {err.strerror.lower()}", err.errno
                ) from None
            finally:
                os.close(fd)
    finally:
        os.close(proc_fd)


def _open_procfs_root(field: str) -> int:
    from pyoci.linux import sysbind

    try:
        fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(f"{field}: /proc: {err.strerror.lower()}", err.errno) from None
    if sysbind.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC or os.fstat(fd).st_ino != sc.PROC_ROOT_INO:
        os.close(fd)
        raise PyociError(f"{field}: /proc in the container is not a procfs mount")
    return fd


def readonly_paths(paths: list[str]) -> None:
    """Bind each path onto itself and remount it read-only (missing paths are skipped)."""
    from pyoci.linux import sysbind

    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, path in enumerate(paths):
            fd = _open_if_present(root_fd, path)
            if fd is None:
                continue
            try:
                sysbind.mount(fd_path(fd), fd_path(fd), None, sc.MS_BIND | sc.MS_REC, None)
                _remount_top_readonly(root_fd, path, sc.MS_RDONLY | sc.MS_REC)
            except OSError as err:
                raise PyociError(
                    f"linux.readonlyPaths[{i}]: {path}: {err.strerror.lower()}", err.errno
                ) from None
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


def readonly_root() -> None:
    """root.readonly: remount `/` read-only, keeping its other (possibly locked) flags."""
    try:
        remount_bind("/", sc.MS_RDONLY)
    except OSError as err:
        raise PyociError(
            f"root.readonly: remount / read-only: {err.strerror.lower()}", err.errno
        ) from None

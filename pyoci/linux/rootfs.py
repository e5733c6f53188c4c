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

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc
from pyoci.linux.mounts import PROPAGATION_OPTIONS, remount_bind
from pyoci.linux.paths import fd_path, open_in_root


def prepare(rootfs: str, propagation: str | None) -> None:
    """Cut `/` off from the host (rslave, runc's default, or the configured private/slave
    mode), then bind the rootfs onto itself. Shared and unbindable modes are applied after
    the pivot (`set_rootfs_propagation`): made here they would propagate to the host."""
    flags = sc.MS_SLAVE | sc.MS_REC
    if propagation in ("private", "rprivate", "slave", "rslave"):
        flags = PROPAGATION_OPTIONS[propagation]
    try:
        if flags & sc.MS_PRIVATE:
            sc.mount(None, "/", None, sc.MS_SLAVE | sc.MS_REC, None)
        sc.mount(None, "/", None, flags, None)
    except OSError as err:
        raise PyociError(
            f"linux.rootfsPropagation: making / {propagation or 'rslave'}: {err.strerror.lower()}",
            err.errno,
        ) from None
    try:
        sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC, None)
    except OSError as err:
        raise PyociError(
            f"root.path: bind mount {rootfs} onto itself: {err.strerror.lower()}", err.errno
        ) from None


def set_rootfs_propagation(propagation: str | None) -> None:
    """Shared or unbindable `linux.rootfsPropagation`, applied to the container's `/` once the
    old root is gone, so the mode cannot reach the host."""
    if propagation in ("shared", "rshared", "unbindable", "runbindable"):
        sc.mount(None, "/", None, PROPAGATION_OPTIONS[propagation], None)


def pivot(rootfs: str) -> None:
    """Make `rootfs` the root of this mount namespace and drop the old root entirely."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(rootfs)
        sc.pivot_root(".", ".")
        # The old root is now stacked on "/"; "." is still the *new* root. Step onto the old
        # one before making it a slave, or the container's own shared mounts lose their
        # propagation (runc's pivotRoot does the same fchdir).
        os.fchdir(old_root)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    except OSError as err:
        raise PyociError(f"pivot_root into {rootfs}: {err.strerror.lower()}", err.errno) from None
    finally:
        os.close(old_root)


def move_root(rootfs: str) -> None:
    """`--no-pivot`: MS_MOVE the rootfs over `/` and chroot (for ramfs roots, as runc)."""
    try:
        os.chdir(rootfs)
        sc.mount(rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
        os.chdir("/")
    except OSError as err:
        raise PyociError(
            f"moving {rootfs} to / (--no-pivot): {err.strerror.lower()}", err.errno
        ) from None


def mask_paths(paths: list[str]) -> None:
    """Hide each path: /dev/null over a file, an empty read-only tmpfs over a directory.
    Missing paths are skipped (the spec's paths are host-dependent, e.g. /proc/acpi)."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, path in enumerate(paths):
            try:
                fd = open_in_root(root_fd, path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                target = fd_path(fd)
                if os.path.isdir(target):
                    sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, "size=0k,mode=755")
                else:
                    sc.mount("/dev/null", target, None, sc.MS_BIND, None)
            except OSError as err:
                raise PyociError(
                    f"linux.maskedPaths[{i}]: masking {path}: {err.strerror.lower()}", err.errno
                ) from None
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


def readonly_paths(paths: list[str]) -> None:
    """Bind each path onto itself and remount it read-only (missing paths are skipped)."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, path in enumerate(paths):
            try:
                fd = open_in_root(root_fd, path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            try:
                sc.mount(fd_path(fd), fd_path(fd), None, sc.MS_BIND | sc.MS_REC, None)
                os.close(fd)
                fd = open_in_root(root_fd, path)
                remount_bind(fd_path(fd), sc.MS_RDONLY | sc.MS_REC)
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

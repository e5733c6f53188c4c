"""ID-mapped mounts (`idmap`/`ridmap` options, or uid/gidMappings on a mount).

An idmapped mount needs privileges over the *source* mount, which only the host side has, and
a user namespace fd that carries the mapping. So the parent does the work before any fork:
it makes a throwaway user namespace with the mappings (a child that unshares and waits while
the parent writes its maps), clones the source with open_tree(OPEN_TREE_CLONE), sets
MOUNT_ATTR_IDMAP on the clone, and hands the detached tree's fd to the init, which attaches it
with move_mount() at the destination inside the rootfs (as runc 1.2 and crun do).
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc


def userns_fd_for(uid_mappings: list, gid_mappings: list) -> int:
    """An fd of a new user namespace with these mappings (its only process is gone)."""
    from pyoci.linux import sysbind

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(go_w)
            sysbind.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise PyociError("idmap: could not create a user namespace for the mount")
        from pyoci.linux.namespaces import write_id_maps

        write_id_maps(pid, uid_mappings, gid_mappings, deny_setgroups=True)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def idmapped_tree(op, uid_mappings: list, gid_mappings: list) -> int:
    """A detached, id-mapped clone of op.source, as an fd for move_mount()."""
    from pyoci.linux import sysbind

    if not uid_mappings or not gid_mappings:
        raise PyociError(
            f"{op.path}: an idmapped mount needs uidMappings and gidMappings "
            "(on the mount, or the container's)"
        )
    recursive = op.idmap == "ridmap" or bool(op.flags & sc.MS_REC)
    flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | (sc.AT_RECURSIVE if recursive else 0)
    userns = userns_fd_for(uid_mappings, gid_mappings)
    try:
        tree = sysbind.open_tree(-100, op.source, flags)
        try:
            sysbind.mount_setattr(
                tree,
                "",
                sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive else 0),
                attr_set=sc.MOUNT_ATTR_IDMAP,
                userns_fd=userns,
            )
        except OSError:
            os.close(tree)
            raise
        return tree
    except OSError as err:
        raise PyociError(
            f"{op.path}: idmapped mount of {op.source}: {err.strerror.lower()} "
            "(the filesystem or kernel may not support idmapped mounts)",
            err.errno,
        ) from None
    finally:
        os.close(userns)

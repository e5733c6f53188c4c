"""Mounts a container without a mount namespace leaves in the host's (runtime-spec: a
namespace type not listed is inherited from the runtime).

Then the container's mounts are made under its rootfs in the host's mount namespace and the
init chroots into it, as runc does; unlike runc, pyoci removes them again. The parent notes
which mounts existed under the rootfs before `create`, the new ones are recorded in the state,
and `delete` (or a failed `create`) detaches exactly those, deepest first.
"""

from __future__ import annotations

from pyoci.errors import PyociError
from pyoci.linux import mountinfo


def under(path: str) -> list[tuple[int, str]]:
    """(mount id, mount point) of every mount at or below `path`, in mountinfo order (a
    parent before what is mounted on it)."""
    return [(m.mount_id, m.point) for m in mountinfo.under(mountinfo.read(), path)]


def new_since(path: str, before: set[int]) -> list[str]:
    """Mount points at or below `path` that were not there (by mount id) in `before`."""
    return [point for mount_id, point in under(path) if mount_id not in before]


def detach(points: list[str]) -> None:
    """umount2(MNT_DETACH) each, last mounted first; one already gone is not an error."""
    from pyoci.linux import sysbind
    from pyoci.linux import syscalls as sc

    problems = []
    for point in reversed(points):
        try:
            sysbind.umount2(point, sc.MNT_DETACH)
        except OSError as err:
            if err.errno not in (2, 22):  # ENOENT, EINVAL: not (or no longer) a mount point
                problems.append(f"{point}: {err.strerror.lower()}")
    if problems:
        raise PyociError("unmounting the container's mounts: " + "; ".join(problems))

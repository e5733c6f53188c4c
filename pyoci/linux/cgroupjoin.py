"""Putting a new process into its cgroups without the kernel's global migration lock.

Why: moving a process by writing its pid to `cgroup.procs` (v1 or v2) takes the global
`cgroup_threadgroup_rwsem` for writing, and the first writer after a quiet spell waits for an
RCU grace period: 10-20 ms on these VMs, more than the rest of `pyoci run` together (runc pays
it on every `run` that does not follow another within a few ms). The kernel skips that lock in
two cases (kernel/cgroup/cgroup.c: `cgroup_procs_write_start`, `cgroup_css_set_fork`):
- a thread moving *itself*, by writing "0" to a v1 hierarchy's `tasks` file. pyoci's children
  are single-threaded (fork copies only the calling thread), so that moves the whole process;
- a child *born* in a cgroup2 directory: clone3(CLONE_INTO_CGROUP), Linux 5.7.
So the parent forks stage 1 into the cgroup2 directory and stage 1 joins the v1 hierarchies
itself, first thing, while it is still the host's root in the host's namespaces (it could not
write those files from inside a user namespace). Where clone3 is refused (an old kernel, a
sandbox's seccomp filter) stage 1 writes "0" to `cgroup.procs` instead: the old wait, the same
result.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import syscalls as sc


def fork_into(v2_dir: str | None) -> tuple[int, bool]:
    """fork(); with `v2_dir`, the child starts in that cgroup2 directory when the kernel
    allows. Returns (pid, whether the child is already in `v2_dir`)."""
    if v2_dir is None:
        return os.fork(), False
    try:
        fd = os.open(v2_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return os.fork(), False  # the child's join_self names the problem
    try:
        return sc.fork_into_cgroup(fd), True
    except OSError:
        return os.fork(), False
    finally:
        os.close(fd)


def join_self(v1_dirs: list[str], v2_dir: str | None, field: str) -> None:
    """Move the calling (single-threaded) process into each v1 directory, and into `v2_dir`
    when it was not born there."""
    targets = [(d, "tasks") for d in v1_dirs]
    if v2_dir:
        targets.append((v2_dir, "cgroup.procs"))
    for directory, name in targets:
        try:
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as err:
            raise PyociError(
                f"{field}: joining {directory}: {(err.strerror or str(err)).lower()}", err.errno
            ) from None

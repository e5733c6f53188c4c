"""Putting a new process into its cgroups without the kernel's global migration lock.

Why: moving a process by writing its pid to `cgroup.procs` (v1 or v2) takes the global
`cgroup_threadgroup_rwsem` for writing, and the first writer after a quiet spell waits for an
RCU grace period: 10-20 ms on these VMs, more than the rest of `pyoci run` together (runc pays
it on every `run` that does not follow another within a few ms). The kernel skips that lock in
two cases (kernel/cgroup/cgroup.c: `cgroup_procs_write_start`, `cgroup_css_set_fork`):
- a thread moving *itself*, by writing "0" to a v1 hierarchy's `tasks` file. pyoci's children
  are single-threaded (fork copies only the calling thread), so that moves the whole process;
- a child *born* in a cgroup2 directory: clone3(CLONE_INTO_CGROUP), Linux 5.7.
So in `create` stage 1 joins the v1 hierarchies itself, first thing, while it is still the
host's root in the host's namespaces (it could not write those files from inside a user
namespace), and gives birth to the init in the cgroup2 directory; with a user namespace or a
joined cgroup namespace ahead, it joins cgroup2 itself before entering them (the lock's cost
then, as runc always pays: from inside, the files are not its to write, or the directory not
in view). `exec`'s parent gives birth to its stage 1 in the cgroup2
directory, and that stage joins the v1 hierarchies itself. The cgroup2 directory is held as an
O_PATH fd opened on the host, never looked up again after a namespace change.

Where clone3 is refused before the kernel reserved the child's pid (no clone3 or no
CLONE_INTO_CGROUP: ENOSYS, E2BIG, EINVAL; a seccomp filter: EPERM) the child is forked plainly
and moves itself through `cgroup.procs`: the old wait, the same result. Any later refusal (a
busy or threaded cgroup, permissions, pids.max) is the error to report: the pid is spent, and
in a new pid namespace a failed first child leaves it unable to fork again.
"""

from __future__ import annotations

import errno
import os

from pyoci.errors import PyociError

# Refusals that come before copy_process() reserves a pid: safe to retry with fork().
_RETRY_WITH_FORK = (errno.ENOSYS, errno.E2BIG, errno.EINVAL, errno.EPERM)


def open_dir(path: str | None, field: str) -> int | None:
    """An O_PATH fd of a cgroup2 directory, for fork_into and join_self."""
    if path is None:
        return None
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(f"{field}: opening {path}: {err.strerror.lower()}", err.errno) from None


def fork_into(v2_fd: int | None, field: str, v2_dir: str = "") -> tuple[int, bool]:
    """fork(); with `v2_fd`, the child starts in that cgroup2 directory where the kernel
    offers it. Returns (pid, whether the child was born there)."""
    from pyoci.linux import sysbind

    if v2_fd is None:
        return os.fork(), False
    try:
        return sysbind.fork_into_cgroup(v2_fd), True
    except OSError as err:
        if err.errno in _RETRY_WITH_FORK:
            return os.fork(), False
        raise PyociError(
            f"{field}: starting in {v2_dir}: {err.strerror.lower()}", err.errno
        ) from None


def join_self(v1_dirs: list[str], v2_fd: int | None, field: str, v2_dir: str = "") -> None:
    """Move the calling (single-threaded) process into each v1 directory, and into the
    cgroup2 directory `v2_fd` when given."""
    targets: list[tuple[str, str, int | None]] = [(d, "tasks", None) for d in v1_dirs]
    if v2_fd is not None:
        targets.append((v2_dir, "cgroup.procs", v2_fd))
    for directory, name, dir_fd in targets:
        try:
            if dir_fd is None:
                fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CLOEXEC)
            else:
                fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        except OSError as err:
            raise PyociError(
                f"{field}: joining {directory}: {(err.strerror or str(err)).lower()}", err.errno
            ) from None

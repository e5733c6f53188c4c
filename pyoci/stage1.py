"""Stage 1 of `create` (C1, "pyoci:[1:C1]"): into the container's cgroups and namespaces,
then fork the init and report its pid.

Separate from the init (`pyoci.init`) because it is a different process with a different
job: it stays outside the container's pid namespace (whose first process it forks), is the
one that loads ctypes (still in the host's mount namespace), and exits as soon as the init
exists. Its messages are `pyoci.channel`'s; its instructions are the `InitPlan`.
"""

from __future__ import annotations

import _signal as signal  # `signal` imports enum: ~3 ms per command
import _socket as socket
import os

from pyoci import faults
from pyoci.channel import GO, MAPPED, PID, USERNS_READY, send_error
from pyoci.errors import PyociError
from pyoci.init import init
from pyoci.linux import cgroupjoin, mounts, namespaces
from pyoci.linux import syscalls as sc
from pyoci.plan import InitPlan
from pyoci.procattrs import close_inherited_fds


def stage1(plan: InitPlan, sock: socket.socket) -> None:
    """C1: namespaces, then fork the init and report its pid. Never returns."""
    code = 1
    try:
        from pyoci.linux import sysbind  # ctypes, now: still in the host's mount namespace

        sysbind.set_process_name("pyoci:[1:C1]")
        sysbind.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        # Before anything of the container exists: nothing of ours may be reached through
        # /proc/PID (exe, fd, mem) from inside (inherited by the init until its execve), and
        # no fd of the caller's but stdio and the preserved ones may come along.
        sysbind.prctl(sc.PR_SET_DUMPABLE, 0)
        close_inherited_fds(3 + plan.preserve_fds, plan.keep_fds() | {sock.fileno()})
        go = sock.recv(1 << 20)  # errors before GO would race the parent's send of it
        if not go.startswith(GO):
            os._exit(1)
        faults.point("stage1:GO")
        process = plan.spec.process
        if process is not None and process.oom_score_adj is not None:
            # Through the host's /proc, before any namespace (the container's /proc could be
            # anything by then); the init inherits it.
            _write_file(
                "/proc/self/oom_score_adj", str(process.oom_score_adj), "process.oomScoreAdj"
            )
        if go[len(GO) :]:  # the cgroup2 device program, compiled by the parent
            from pyoci.linux import resources

            resources.install_bpf(plan.cgroup_v2, go[len(GO) :], "linux.resources.devices")
        ns = plan.ns
        # Into the cgroups first, while still the host's root in the host's namespaces. The
        # cgroup2 directory (an fd: later lookups would resolve in the container's namespaces)
        # is left to the init's birth (clone3, no migration lock) unless a user or a joined
        # cgroup namespace is next (pyoci.linux.cgroupjoin).
        field = "linux.cgroupsPath"
        v2_fd = cgroupjoin.open_dir(plan.cgroup_v2, field)
        early = ns.user_fd is not None or ns.new_user or ns.joins("cgroup")
        cgroupjoin.join_self(plan.cgroup_v1, v2_fd if early else None, field, plan.cgroup_v2)
        birth_fd = None if early else v2_fd
        if (ns.user_fd is not None or ns.new_user) and os.geteuid() == 0:
            # Bind sources are the host's: look them up as the host's root, here, not from
            # inside the user namespace (whose root may not search their parents). Rootless,
            # the namespace's root is the user itself: it sees what the user sees.
            mounts.clone_bind_sources(plan.mount_ops)
        if ns.user_fd is not None:
            sysbind.setns(ns.user_fd, sc.CLONE_NEWUSER)
        elif ns.new_user:
            sysbind.unshare(sc.CLONE_NEWUSER)
            # Dumpable while in a user namespace's setup (as runc's nsexec): the parent writes
            # our uid_map, and /proc/self/timens_offsets must be ours, not the host root's.
            # This process stays outside the container's pid namespace; the init is forked
            # only after dumpable is cleared again below.
            sysbind.prctl(sc.PR_SET_DUMPABLE, 1)
            faults.point("stage1:USERNS_READY")
            sock.send(USERNS_READY)
            if sock.recv(64) != MAPPED:
                os._exit(1)
            faults.point("stage1:MAPPED")
        if ns.user_fd is not None or ns.new_user:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            sysbind.prctl(sc.PR_SET_DUMPABLE, 1)  # the id change cleared it (see above)
        namespaces.join_and_unshare(ns)
        faults.point("stage1:namespaces")
        ns.close()  # joined: the init must not inherit fds of the host's namespaces
        sysbind.prctl(sc.PR_SET_DUMPABLE, 0)
        pid, born_in_v2 = cgroupjoin.fork_into(birth_fd, field, plan.cgroup_v2 or "")
        if pid == 0:
            init(plan, sock, v2_fd, join_v2=birth_fd is not None and not born_in_v2)
        faults.point("stage1:PID")
        sock.send(PID + b" %d" % pid)
        code = 0
    except BaseException as err:  # noqa: BLE001 - everything is reported, then we exit
        send_error(sock, err)
    os._exit(code)


def _write_file(path: str, value: str, field: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise PyociError(f"{field}: writing {path}: {err.strerror.lower()}", err.errno) from None

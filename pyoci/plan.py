"""`InitPlan`: everything the children of `create` need, decided and checked in the parent.

Separate from the stages because it is the parent's work: every decision, every check that
can refuse the config, and every import happens here, before the fork, so that stage 1 and
the init (`pyoci.stage1`, `pyoci.init`) only carry it out (after the pivot a lazy import would
read the *container's* files). The plan also owns the fds it opens for the children
(namespaces, idmapped trees, the sealed helper, seccomp, the console): `close()` releases the
parent's copies, and a plan that fails part-way releases them itself.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import caps as capslib
from pyoci.linux import devices, mounts, namespaces
from pyoci.options import CreateOptions

# Hooks the runtime runs during create, or that the init runs: either way the init needs the
# state, sent in the handshake.
_CREATE_HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer")


class InitPlan:
    """Everything the children need, decided and checked in the parent."""

    def __init__(self, spec, state_dir: str, options: CreateOptions, cgroup=None) -> None:
        self.spec = spec
        self.state_dir = state_dir
        self.no_pivot = options.no_pivot
        self.preserve_fds = options.preserve_fds
        self.use_init = options.use_init or spec.annotations.get("org.pyoci.init") == "true"
        # Every fd the plan may own, unset (-1 / None) until its step opens it, so that
        # close() is right at any point.
        # exec.fifo as an O_PATH fd (opened by the parent right before the fork): the waiting
        # process reopens it through /proc/self/fd, so no host directory is held. Without a
        # /proc in the container, the state dir's fd (`state_fd`) is the only way back to it.
        self.fifo_fd = -1
        self.state_fd = -1
        self.helper_fd = -1  # the sealed pyoci-exec (pyoci.linux.exechelper)
        self.seccomp_sock = -1
        # With no_new_privs and no listener, pyoci-exec loads the compiled filter itself, just
        # before execve (its fd and flags); otherwise Python loads it.
        self.seccomp_program: tuple[int, int] | None = None
        self.console_fd = options.console_fd
        self.own_console_fd = False
        self.ns: namespaces.NamespacePlan | None = None
        self.mount_ops: list = []
        self.hook_state: dict = {}

        self._check_terminal(options)  # the checks that open nothing, first
        self._check_unprivileged()
        try:
            self._plan_cgroups(cgroup)
            self._plan_seccomp()
            self._plan_console(options)
            self._plan_namespaces()
            self._plan_mounts(cgroup)
            self._plan_devices()
            self._plan_process()
            self._plan_start()
            self._preload()
        except BaseException:
            self.close()
            raise

    # --- the steps, in order -----------------------------------------------------------------
    def _check_terminal(self, options: CreateOptions) -> None:
        spec = self.spec
        self.terminal = spec.process is not None and spec.process.terminal
        if options.console_socket and not self.terminal:
            raise PyociError("--console-socket: process.terminal is false in config.json")
        if self.terminal and not options.console_socket and options.console_fd < 0:
            raise PyociError(
                "process.terminal: a terminal needs --console-socket (or a foreground `run`)"
            )

    def _check_unprivileged(self) -> None:
        spec = self.spec
        self.in_user_ns = spec.namespace("user") is not None
        if os.geteuid() == 0:
            return
        for i, dev in enumerate(spec.devices):
            raise PyociError(
                f"linux.devices[{i}]: an unprivileged user cannot create device nodes "
                f"({dev.path}); bind-mount the host's device instead"
            )
        if not self.in_user_ns:
            raise PyociError(
                "linux.namespaces: an unprivileged user needs a user namespace "
                "(try `pyoci spec --rootless`)"
            )

    def _plan_cgroups(self, cgroup) -> None:
        """The container's cgroup directories, joined as pyoci.linux.cgroupjoin explains."""
        self.cgroup_v1: list[str] = cgroup.v1_dirs() if cgroup is not None else []
        self.cgroup_v2: str | None = cgroup.v2_dir if cgroup is not None else None

    def _plan_seccomp(self) -> None:
        spec = self.spec
        self.runs_hooks = any(spec.hooks.get(name) for name in _CREATE_HOOKS)
        self.seccomp = None
        if not spec.linux.get("seccomp"):
            return
        from pyoci.linux import seccompcache

        self.seccomp = seccompcache.compiled(
            spec.linux["seccomp"], os.path.dirname(self.state_dir.rstrip("/"))
        )
        nnp = spec.process is not None and spec.process.no_new_privileges
        if nnp and not self.seccomp.uses_notify:  # (a listener needs the fd Python sends)
            self.seccomp_program = self.seccomp.export_for_helper()
        if self.seccomp.uses_notify:
            from pyoci.linux import console

            self.seccomp_sock = console.connect(self.seccomp.listener_path)
            self.runs_hooks = True  # the init needs the state (host pid) for the listener

    def _plan_console(self, options: CreateOptions) -> None:
        if self.terminal and options.console_socket:
            from pyoci.linux import console

            self.console_fd = console.connect(options.console_socket)
            self.own_console_fd = True

    def _plan_namespaces(self) -> None:
        # No mount namespace entry: the runtime's is inherited (runtime-spec), so the mounts
        # are made in the host's, under the rootfs, and the init chroots (pyoci.linux.hostmounts).
        self.host_mount_ns = self.spec.namespace("mount") is None
        self.ns = namespaces.plan_namespaces(self.spec)
        self.loopback = self.spec.has_new("network")

    def _plan_mounts(self, cgroup) -> None:
        """Each mount parsed; a cgroup mount's binds; an idmapped mount's detached tree (one
        throwaway user namespace, a fork, per mount: pyoci.linux.idmap)."""
        spec = self.spec
        self.has_proc = any(m.destination.rstrip("/") == "/proc" for m in spec.mounts)
        self.mount_ops = [mounts.parse_options(m, spec.bundle) for m in spec.mounts]
        if cgroup is not None:
            from pyoci.linux.cgroupfs import plan_cgroup_binds

            for op in self.mount_ops:
                if op.type == "cgroup" and op.cgroup_binds is not None:
                    op.cgroup_binds = plan_cgroup_binds(cgroup.paths_by_key())
        for mount, op in zip(spec.mounts, self.mount_ops, strict=True):
            if op.idmap:
                from pyoci.linux.idmap import idmapped_tree

                op.tree_fd = idmapped_tree(
                    op,
                    mount.uid_mappings or spec.uid_mappings,
                    mount.gid_mappings or spec.gid_mappings,
                )

    def _plan_devices(self) -> None:
        self.dev_bind_mounted = any(
            op.destination.rstrip("/") == "/dev" and op.is_bind for op in self.mount_ops
        )
        self.device_ops = [] if self.dev_bind_mounted else devices.plan_devices(self.spec)
        self.has_devpts = any(op.type == "devpts" for op in self.mount_ops)

    def _plan_process(self) -> None:
        """The init's own settings: sysctls, capabilities, env, personality, I/O priority,
        scheduler, memory policy."""
        spec, process = self.spec, self.spec.process
        self.last_cap = capslib.last_cap()
        self.sysctl = plan_sysctl(spec)
        self.env = process.env_dict() if process else {}
        raw_process = process.raw if process else {}
        self.personality = self.io_priority = self.scheduler = None
        personality = spec.linux.get("personality")
        if personality or raw_process.get("ioPriority") or raw_process.get("scheduler"):
            from pyoci.linux import sched  # only then: its ctypes struct costs ~0.6 ms

            self.personality = sched.plan_personality(personality)
            self.io_priority, self.scheduler = sched.plan_process(raw_process)
        # linux.memoryPolicy: checked and packed now (pure Python), set by the init with one
        # syscall (pyoci.linux.mempolicy).
        self.memory_policy = None
        if spec.linux.get("memoryPolicy") is not None:
            from pyoci.linux import mempolicy

            self.memory_policy = mempolicy.plan_memory_policy(spec.linux["memoryPolicy"])

    def _plan_start(self) -> None:
        """Who waits on exec.fifo: pyoci-exec (the common case: a small sealed program, no
        interpreter, no host fd but the fifo), or the init's Python when something must run
        after `start` and before the exec (startContainer hooks), or when there is no /proc to
        reopen the fifo through. Then the only program the init execs: the sealed helper."""
        spec = self.spec
        self.waits_in_python = (
            spec.process is None or bool(spec.hooks.get("startContainer")) or not self.has_proc
        )
        # Without /proc the fifo is reached through the root-only state dir, so the user
        # switch must wait until after it (errors of that step then reach the container's
        # stderr, not `create`).
        self.drop_after_wait = not self.has_proc
        if spec.process is not None:
            from pyoci.linux import exechelper

            self.helper_fd = exechelper.sealed_copy()

    def _preload(self) -> None:
        """What the children will import, loaded now (no import after the pivot)."""
        process = self.spec.process
        if process and process.rlimits:
            import resource  # noqa: F401
        if self.runs_hooks:
            self.preload_hooks()
        if self.terminal:
            import pyoci.linux.console  # noqa: F401

    def preload_hooks(self) -> None:
        """The init stops at HOOKS (hooks to run, or the network to attach): the modules it
        needs then, loaded before the fork."""
        import select  # noqa: F401  (hooks wait on a pidfd)

        from pyoci import hooks  # noqa: F401

        self.runs_hooks = True

    # --- the fds -----------------------------------------------------------------------------
    def keep_fds(self) -> set[int]:
        """Every fd the children need; stage 1 closes all others it inherited from the caller
        (but stdio and the preserved ones) before entering any namespace of the container."""
        fds = {self.fifo_fd, self.state_fd, self.helper_fd, self.seccomp_sock, self.console_fd}
        if self.seccomp_program is not None:
            fds.add(self.seccomp_program[0])
        if self.ns is not None:
            fds.update(fd for _, fd in self.ns.join)
            if self.ns.user_fd is not None:
                fds.add(self.ns.user_fd)
        fds.update(op.tree_fd for op in self.mount_ops)
        fds.discard(-1)
        return fds

    def close(self) -> None:
        """The parent's copies of the fds handed to the children (and, from a failed plan,
        those opened so far). Idempotent."""
        if self.ns is not None:
            self.ns.close()
        for op in self.mount_ops:
            if op.tree_fd >= 0:
                os.close(op.tree_fd)
                op.tree_fd = -1
        for name in ("state_fd", "fifo_fd", "helper_fd", "seccomp_sock"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        if self.seccomp_program is not None:
            os.close(self.seccomp_program[0])
            self.seccomp_program = None
        if self.own_console_fd:
            os.close(self.console_fd)
            self.own_console_fd = False


def plan_sysctl(spec) -> list[tuple[str, str, str]]:
    """(field, /proc/sys path, value); the rules (pyoci.rules.sysctl_problems) were checked
    when the config was parsed."""
    return [
        (f"linux.sysctl.{key}", "/proc/sys/" + key.replace(".", "/"), value)
        for key, value in spec.sysctl.items()
    ]

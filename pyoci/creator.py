"""The parent's half of `create`: fork stage 1, answer its messages, clean up on failure.

See `pyoci.channel` for the message table. The parent owns every resource it makes (the two
child processes, the fifo), so `abort()` can undo a half-made container from any step.
"""

from __future__ import annotations

import _socket as socket  # `socket` imports enum: ~3 ms per command
import os

from pyoci import OCI_VERSION, channel, faults
from pyoci.errors import PyociError
from pyoci.linux import namespaces
from pyoci.options import CreateOptions
from pyoci.plan import InitPlan
from pyoci.stage1 import stage1  # the child stages, loaded before the fork (no copy-on-write)
from pyoci.state import FIFO_FILE, proc_start_time


class Creator:
    def __init__(
        self, spec, container_id: str, state_dir: str, options: CreateOptions, log=None
    ) -> None:
        self.spec = spec
        self.container_id = container_id
        self.state_dir = state_dir
        self.options = options
        self.log = log
        self.network = None  # its NetPlan, when the config or --net asks for networking
        self.cgroup = None
        self.device_rules: list[dict] = []  # linux.devices' allow rules, kept for `update`
        self.stage1_pid = 0
        self.init_pid = 0
        self.plan: InitPlan | None = None
        # Without a mount namespace: the mount ids under the rootfs before we mounted anything
        # there (pyoci.linux.hostmounts), and after READY the mount points we added.
        self.mounts_before: set[int] | None = None
        self.host_mounts: list[str] = []
        # Set by Container.create: the state lock's fd (stage 1 closes it at once: a child
        # holding it would keep the container locked), and the early state's writer.
        self.lock_fd = -1
        self.checkpoint = None
        self._stage1_pidfd = -1

    def spawn(self) -> tuple[int, int]:
        """Fork, drive the handshake until READY; return the init's host pid and start time."""
        self._plan_cgroup()
        self._plan_network()
        if self.log is not None and self.spec.process is not None:
            for warning in self.spec.process.warnings:  # capabilities that cannot be granted
                self.log.warning(warning)
        self.plan = InitPlan(self.spec, self.state_dir, self.options, self.cgroup)
        if self.network is not None and not self.plan.runs_hooks:
            # The init stops at its HOOKS sync point (namespaces made; no pivot, sysctl or
            # hook yet): the network is attached then.
            self.plan.preload_hooks()
        fifo = os.path.join(self.state_dir, FIFO_FILE)
        # 0622 as runc: the init may be a user namespace's root we cannot name here (a joined
        # namespace); only root can traverse the state root (0700) to reach it by path.
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # mkfifo's mode is filtered by the umask
        faults.point("create:fifo")
        root_uid, root_gid = self._container_root_ids()
        if os.geteuid() == 0 and (root_uid, root_gid) != (os.geteuid(), os.getegid()):
            os.chown(fifo, root_uid, root_gid)  # the init opens it as the container's root
        # The fifo itself, not its directory: the init holds no host directory while it
        # waits. Without a /proc in the container only the directory leads back to it.
        self.plan.fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        if not self.plan.has_proc:
            self.plan.state_fd = os.open(self.state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if self.plan.host_mount_ns:
            from pyoci.linux import hostmounts

            self.mounts_before = {i for i, _ in hostmounts.under(self.spec.root_path)}
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Stage 1 joins the container's cgroups itself once they exist (GO), and the init
            # is born in them (pyoci.linux.cgroupjoin says why not by pid): the container's
            # processes are limited from their first instruction.
            pid = os.fork()
            if pid == 0:
                if self.lock_fd >= 0:
                    os.close(self.lock_fd)
                parent_sock.close()
                stage1(self.plan, child_sock)  # never returns
            self.stage1_pid = pid
            faults.point("create:fork")
            child_sock.close()
            # While stage 1 loads ctypes (~2 ms): one wait instead of two. A cgroup2 device
            # program travels with GO, for stage 1 to load (ctypes stays out of this process).
            device_program = self._make_cgroup()
            faults.point("create:GO")
            parent_sock.send(channel.GO + device_program)
            if self.network is not None:
                self.network.prepare()  # pyroute2's import, while the children work
            self._handshake(parent_sock)
        finally:
            parent_sock.close()
            child_sock.close()
            self.plan.close()
            if self._stage1_pidfd >= 0:
                os.close(self._stage1_pidfd)
                self._stage1_pidfd = -1
        if self.mounts_before is not None:
            from pyoci.linux import hostmounts

            self.host_mounts = hostmounts.new_since(self.spec.root_path, self.mounts_before)
        start_time = proc_start_time(self.init_pid)
        if start_time is None:
            raise PyociError("container init exited during create")
        if self.network is not None:
            self.network.close()  # its sockets; abort() reopens them if it must undo
        return self.init_pid, start_time

    def _plan_network(self) -> None:
        """netDevices and bridge networking (pyoci.linux.network): checked, and the address
        leased, before the fork. The default config pays a look at three fields, and no
        import (the prefix is network.ANNOTATION_PREFIX)."""
        spec = self.spec
        if (
            self.options.net is None
            and not spec.linux.get("netDevices")
            and not any(key.startswith("org.pyoci.net.") for key in spec.annotations)
        ):
            return
        from pyoci.linux import network

        root = os.path.dirname(self.state_dir)

        def on_lease(record: dict) -> None:
            if self.checkpoint is not None:  # the early state: before the lease is written
                self.checkpoint({"network": record})

        self.network = network.plan_network(
            spec, self.options.net, root, self.container_id, on_lease
        )
        faults.point("net:lease")  # the address is leased (in the store), nothing made yet

    def network_state(self) -> dict | None:
        """state.json "network": what `delete` releases (None without a bridge)."""
        return self.network.record() if self.network is not None else None

    def _attach_network(self, sock: socket.socket) -> None:
        """At the init's HOOKS stop: move the devices in, connect the bridge."""
        try:
            self.network.attach(self.init_pid, self._record_moves)
        except BaseException:
            sock.send(channel.ERROR)  # the init exits; abort() undoes what was made
            raise

    def _record_moves(self, record: dict) -> None:
        """The netDevices moved in, into the early state (a `delete` moves them back)."""
        if self.checkpoint is not None:
            self.checkpoint({"netDevicesMoved": record})

    def _plan_cgroup(self) -> None:
        """Where the container's cgroup goes (root only: an unprivileged user has no cgroups
        to manage unless delegated, which pyoci does not use yet)."""
        from pyoci.linux import cgroups, resources

        if os.geteuid() != 0:
            if self.spec.linux.get("resources") and self.log is not None:
                self.log.warning("linux.resources: ignored (rootless: no cgroup delegation)")
            return
        self.cgroup = cgroups.Manager.for_container(
            self.spec.cgroups_path, self.container_id, self.options.systemd_cgroup
        )
        self.device_rules = resources.config_device_rules(self.spec.devices)

    def _make_cgroup(self) -> bytes:
        """Create the planned cgroup and apply linux.resources; return the cgroup2 device
        program to load, if any (b""). On failure it has removed what it made; abort() stops
        stage 1."""
        from pyoci.linux import resources

        manager, spec = self.cgroup, self.spec
        self._record(planned=True)
        if manager is None:
            return b""
        try:
            manager.create()
        except PyociError:
            self.cgroup = None  # create() removed what it made; abort() must not touch the rest
            raise
        self._record()
        faults.point("create:cgroup")
        warn = self.log.warning if self.log is not None else (lambda msg: None)
        res = dict(spec.linux.get("resources") or {})
        # Always a device filter, as runc: deny all, the rules, the defaults and linux.devices
        # (without rules a process with CAP_MKNOD could open any disk of the host).
        res["devices"] = [*(res.get("devices") or []), *self.device_rules]
        deferred: list[bytes] = []
        resources.apply(manager, res, warn, defer_bpf=deferred)
        faults.point("create:cgroup-limits")
        return deferred[0] if deferred else b""

    def _record(self, planned: bool = False) -> None:
        """Into the early state (Container.create): what a `delete` of this create, were it
        killed from here on, must undo. `planned`, before the cgroup is made: its directories
        (empty ones are removed: until the cgroup is recorded made, no process of ours is in
        it), the host's mounts under the rootfs before it, the network lease; then the cgroup
        as made. Nothing to add: no write."""
        recovery: dict = {}
        if not planned:
            recovery["cgroup"] = self.cgroup.to_state()
        else:
            if self.cgroup is not None:
                recovery["cgroupPlanned"] = self.cgroup.all_dirs()
            if self.mounts_before is not None:
                recovery["hostMountsBefore"] = sorted(self.mounts_before)
            if self.network is not None:
                recovery["network"] = self.network_state()
        if recovery and self.checkpoint is not None:
            self.checkpoint(recovery)

    def _container_root_ids(self) -> tuple[int, int]:
        """Host uid/gid of the container's root (itself unless a new user namespace maps it)."""
        uid, gid = os.geteuid(), os.getegid()
        for m in self.spec.uid_mappings:
            if m.container_id == 0:
                uid = m.host_id
        for m in self.spec.gid_mappings:
            if m.container_id == 0:
                gid = m.host_id
        return uid, gid

    def hook_state(self, status: str = "creating") -> dict:
        """The state the runtime spec gives hooks on stdin."""
        state = {
            "ociVersion": OCI_VERSION,  # the runtime's spec version (as runc)
            "id": self.container_id,
            "status": status,
            "pid": self.init_pid,
            "bundle": self.spec.bundle,
        }
        if self.spec.annotations:
            state["annotations"] = self.spec.annotations
        return state

    def _run_create_hooks(self, sock: socket.socket) -> None:
        """prestart (deprecated) then createRuntime, in the runtime's namespaces."""
        from pyoci import hooks, jsonfast

        state = self.hook_state()
        try:
            hooks.run_hooks("prestart", self.spec.hooks, state)
            hooks.run_hooks("createRuntime", self.spec.hooks, state)
        except PyociError:
            sock.send(channel.ERROR)
            raise
        faults.point("create:HOOKS_DONE")
        sock.send(channel.HOOKS_DONE + b" " + jsonfast.dumps(state).encode())

    def _handshake(self, sock: socket.socket) -> None:
        hooks_pending = False
        ready = False
        while True:
            if ready and self.init_pid:
                return
            if hooks_pending and self.init_pid:
                hooks_pending = False
                if self.network is not None:
                    self._attach_network(sock)
                self._run_create_hooks(sock)
            message = self._receive(sock)
            if not message:
                raise PyociError("container init exited during create without reporting an error")
            if message == channel.USERNS_READY:
                faults.point("create:USERNS_READY")
                spec = self.spec
                namespaces.write_id_maps(
                    self.stage1_pid,
                    spec.uid_mappings,
                    spec.gid_mappings,
                    deny_setgroups=os.geteuid() != 0,
                )
                faults.point("create:MAPPED")
                sock.send(channel.MAPPED)
            elif message.startswith(channel.PID + b" "):
                self.init_pid = int(message.split()[1])
                faults.point("create:PID")
                self._reap_stage1()
                if self.cgroup is None and self.checkpoint is not None:
                    # No cgroup holds it for `delete` to find: the init's pid, then.
                    start = proc_start_time(self.init_pid)
                    self.checkpoint({"pid": self.init_pid, "pidStartTime": start})
            elif message == channel.HOOKS:
                hooks_pending = True  # run once the init's pid is known (C1 may lag)
                faults.point("create:HOOKS")
            elif message == channel.READY:
                # Stage 1's PID message and the init's READY travel on one socket from two
                # processes: READY can come first. Keep reading until the pid is known.
                ready = True
                faults.point("create:READY")
                if self.init_pid:
                    return
            elif message.startswith(channel.ERROR):
                faults.point("create:ERROR")
                channel.raise_child_error(message)
            else:
                raise PyociError(f"unexpected message from the container init: {message[:40]!r}")

    def _receive(self, sock: socket.socket) -> bytes:
        """The next message. An init that stops at HOOKS keeps its end of the socket open
        while it waits for HOOKS_DONE, which needs its pid from stage 1: until that pid
        came, stage 1's exit ends the wait too (its pidfd, polled with the socket), as an
        error; a message already sent is read first."""
        if not (self.plan.runs_hooks and self.stage1_pid and not self.init_pid):
            return sock.recv(65536)
        import select  # loaded by InitPlan for the hooks

        if self._stage1_pidfd < 0:
            self._stage1_pidfd = os.pidfd_open(self.stage1_pid)
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self._stage1_pidfd, select.POLLIN)
        events = dict(poller.poll())
        if sock.fileno() not in events:
            raise PyociError(
                "container init exited during create: stage 1 died before it reported the "
                "init's pid"
            )
        return sock.recv(65536)

    def _reap_stage1(self) -> None:
        if self.stage1_pid:
            try:
                os.waitpid(self.stage1_pid, 0)
            except ChildProcessError:
                pass
            self.stage1_pid = 0

    def abort(self) -> None:
        """Kill and reap what was forked; the mounts die with the init's mount namespace, or,
        without one, are detached here."""
        from pyoci.reaping import kill_and_wait

        if self.network is not None:
            # First, while the container's network namespace still exists: devices moved in
            # go back to the runtime's; the veth and the lease go.
            try:
                self.network.undo(self.log)
            except Exception:  # noqa: BLE001  (the create's own error is the one to show)
                pass
            self.network = None
        # The init is our child when we are its subreaper (run): reaped, as stage 1 is.
        kill_and_wait([self.init_pid, self.stage1_pid])
        self.init_pid = self.stage1_pid = 0
        if self.cgroup is not None:
            # Whatever is in the cgroup now is this create's (an init whose pid never reached
            # us, a hook it forked): Manager.create refused a cgroup holding any process.
            kill_and_wait(self.cgroup.pids())
            try:
                self.cgroup.destroy()
            except PyociError:
                pass
            self.cgroup = None
        if self.mounts_before is not None:
            from pyoci.linux import hostmounts

            try:
                hostmounts.detach(hostmounts.new_since(self.spec.root_path, self.mounts_before))
            except PyociError:
                pass  # reported by nothing: the create's own error is the one to show

"""The OCI lifecycle: create → start → state → kill → delete, and run = all of them.

This is the public Python API (`pyoci.Container`); the CLI is a thin layer over it. The state
rules live here, as the runtime spec states them (runtime.md "Operations"): `start` only from
`created`; `kill` only of a created or running container; `delete` only of a stopped one
unless forced. Where runc and crun are lenient (deleting a `created` container), pyoci follows
the spec.

`posix`, not `os`, and no `__future__` import: the short commands (`state`, `start`, `kill`,
`delete`) load this module, and those two imports would cost them about as much as everything
else they do (`pyoci.entry`). Only `create` and `exec`, which load `os` anyway, import it.
"""

import posix

from pyoci import faults
from pyoci import state as statelib
from pyoci.errors import PyociError, does_not_exist

TYPE_CHECKING = False  # (the typing module costs ~1 ms: not imported at run time)
if TYPE_CHECKING:
    from pyoci.options import CreateOptions, ExecOptions

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip


def parse_signal(value: str | int) -> int:
    """`KILL`, `SIGKILL`, `9`, and `RTMIN+3` style names, as runc accepts them."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isascii() and text.isdigit():
        number = int(text)
        if 0 < number <= 64:
            return number
    name = text[3:] if text.startswith("SIG") else text
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        import _signal as signal

        base = signal.SIGRTMIN if name.startswith("RTMIN") else signal.SIGRTMAX
        offset = name[5:]
        try:
            number = base + int(offset) if offset else base
        except ValueError:
            number = 0
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return number
    raise PyociError(f"kill: invalid signal {value!r}")


def _owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _signal_if(pid: int, signum: int, still_ours) -> None:
    """Pin `pid` with a pidfd, then signal it if `still_ours(pid)`: a pid listed a moment ago
    may have exited and gone to another process."""
    from _signal import pidfd_send_signal  # os/_signal: no ctypes on this hot path

    try:
        pidfd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if still_ours(pid):
            pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        pass
    finally:
        posix.close(pidfd)


class _Locked:
    """`with _Locked(container, allowed, refusal) as status:` the state lock held (the state
    read again under it: Container._lock), the status one of `allowed` (None: any) and none
    of `refused`, or else PyociError(refusal formatted with the id and the status); the lock
    released on the way out. Every mutating operation on an existing container goes through
    it, so no other command changes the status meanwhile.
    A plain class: contextlib imports collections (tests/unit/test_import_budget.py)."""

    __slots__ = ("container", "allowed", "refused", "refusal", "lock")

    def __init__(
        self,
        container: "Container",
        allowed: tuple[str, ...] | None,
        refusal: str,
        refused: tuple[str, ...] = (),
    ) -> None:
        self.container = container
        self.allowed = allowed
        self.refused = refused
        self.refusal = refusal

    def __enter__(self) -> str:
        c = self.container
        self.lock = c._lock()
        try:
            status = c.status()
            if status in self.refused or (self.allowed is not None and status not in self.allowed):
                raise PyociError(self.refusal.format(id=c.id, status=status))
        except BaseException:
            self.lock.release()
            raise
        return status

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


class Container:
    """A container known to the state root `root`."""

    def __init__(self, st: "statelib.ContainerState") -> None:
        self._state = st

    # --- lookup --------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str, container_id: str) -> "Container":
        return cls(statelib.load(root, container_id))

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def pid(self) -> int:
        return self._state.pid

    def status(self) -> str:
        return self._state.status()

    def _lock(self) -> statelib.Lock:
        """Take the container's lock and read its state again: the holder we waited for
        (a create finishing, a delete) may have changed it."""
        lock = statelib.lock_existing(self._state.root, self.id)
        try:
            self._state = statelib.load(self._state.root, self.id)
        except BaseException:
            lock.release()
            raise
        self._state.locked = True
        return lock

    @property
    def root(self) -> str:
        """The state root the container is under (`--root`)."""
        return self._state.root

    @property
    def record(self) -> dict:
        """What state.json records (the config's process, seccomp, cgroup, hooks...)."""
        return self._state.data

    def state(self) -> dict:
        """The OCI state (runtime.md "State") plus runc's rootfs, created, owner."""
        return self._state.oci_state()

    # --- create and exec: pyoci.launch (none of the short commands loads it) ----------------
    @classmethod
    def create(
        cls,
        root: str,
        container_id: str,
        options: "CreateOptions | None" = None,
        log=None,
        **fields,
    ) -> "Container":
        """Set the container up and leave its init blocked until `start`. `options`, or its
        fields as keywords (`Container.create(root, "c1", bundle="b")`).

        On any failure everything is undone: the init and stage 1 are killed and reaped (their
        mounts die with their mount namespace) and the state dir is removed.
        """
        from pyoci import launch
        from pyoci.options import CreateOptions

        options = launch.options_of(CreateOptions, options, fields)
        return cls(launch.create(root, container_id, options, log))

    def exec(self, args: list[str], options: "ExecOptions | None" = None, **fields) -> int:
        """Run another process in the container (`args`, or options.process_file); foreground:
        wait and return its exit code. `options`, or its fields as keywords."""
        from pyoci import launch
        from pyoci.options import ExecOptions

        return launch.exec_in(self, args, launch.options_of(ExecOptions, options, fields))

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Let the init exec the user program (it is blocked on exec.fifo)."""
        refusal = 'cannot start container "{id}": it is {status}, not created'
        with _Locked(self, ("created",), refusal):
            if not self._state.data.get("hasProcess", True):
                raise PyociError(f'cannot start container "{self.id}": config.json has no process')
            faults.point("start:fifo")
            try:
                self._open_fifo()
                faults.point("start:poststart")
                self._run_hooks("poststart", warn_only=False)
            except PyociError as err:
                if not err.msg.startswith("hooks."):
                    raise
                # runtime-spec 1.3.0, Lifecycle: if a startContainer or poststart hook fails,
                # "the runtime MUST generate an error, stop the container, and continue the
                # lifecycle at step 12": the container is destroyed, then poststop runs.
                self._destroy(self.status(), force=True)
                raise PyociError(
                    f'container "{self.id}": {err.msg} (the container was stopped and deleted)'
                ) from None

    def _run_hooks(self, name: str, log=None, warn_only: bool = True) -> None:
        """poststart (an error, as runtime-spec 1.3.0 says) and poststop (warnings only,
        printed on stderr)."""
        hooks_config = self._state.data.get("hooks") or {}
        if hooks_config.get(name):
            from pyoci import hooks
            from pyoci.log import Logger

            extras = ("rootfs", "created", "owner")  # runc's additions, not the spec's state
            state = {k: v for k, v in self.state().items() if k not in extras}
            # The init's pid even if it already exited (a short-lived process can be gone
            # before poststart runs); the status is set by the hook's name.
            state["pid"] = self.pid
            hooks.run_hooks(name, hooks_config, state, warn_only, log or Logger(None))

    def _open_fifo(self) -> None:
        import select

        fifo = self._state.fifo_path
        # The pidfd first: once the fifo is open the init may run, exec, exit and be reaped
        # before we look at it, and a short-lived container is not a failed start.
        try:
            pidfd = posix.pidfd_open(self.pid)
        except ProcessLookupError:
            raise PyociError(
                f'cannot start container "{self.id}": its process has exited'
            ) from None
        try:
            mark = f"{self._state.dir}/{statelib.START_MARK}"  # see state.status()
            posix.close(posix.open(mark, posix.O_WRONLY | posix.O_CREAT | posix.O_CLOEXEC, 0o600))
            fd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        except OSError:
            posix.close(pidfd)
            raise
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if fd in events:
                    data = posix.read(fd, 4096)
                    if data == b"0":
                        break
                    if data.startswith(b"E"):  # a startContainer hook failed in the init
                        raise PyociError(data[1:].decode(errors="replace"))
                if pidfd in events:
                    raise PyociError(f'cannot start container "{self.id}": its process has exited')
        finally:
            posix.close(fd)
            posix.close(pidfd)
        # A start killed before this leaves the fifo of an init that went on: `state` then
        # goes by the init's name (ContainerState.status), and says running.
        faults.point("start:fifo-unlink")
        posix.unlink(fifo)

    # --- cgroup operations ---------------------------------------------------------------------
    def require_cgroup(self, what: str):
        """The container's cgroup manager, or an error saying it has none (rootless)."""
        cgroup = self.cgroup()
        if cgroup is None:
            raise PyociError(f'cannot {what} container "{self.id}": it has no cgroup (rootless)')
        return cgroup

    def pause(self) -> None:
        """Freeze every process of the container (freezer v1 / cgroup.freeze v2)."""
        with _Locked(
            self, ("running",), 'cannot pause container "{id}": it is {status}, not running'
        ):
            self.require_cgroup("pause").freeze(True)

    def resume(self) -> None:
        with _Locked(
            self, ("paused",), 'cannot resume container "{id}": it is {status}, not paused'
        ):
            self.require_cgroup("resume").freeze(False)

    def update(self, resources: dict, log=None) -> None:
        """Apply new linux.resources to a live container and remember them."""
        from pyoci.linux import resources as reslib

        refusal = 'cannot update container "{id}": it is {status}'
        with _Locked(self, None, refusal, refused=("stopped",)):
            cgroup = self.require_cgroup("update")
            warn = log.warning if log is not None else (lambda msg: None)
            applied = resources
            if resources.get("devices") is not None:  # linux.devices stay usable, as at create
                devices = [*resources["devices"], *self._state.data.get("deviceRules", [])]
                applied = {**resources, "devices": devices}
            reslib.apply(cgroup, applied, warn, prefix="resources")
            self._state.data["cgroup"] = cgroup.to_state()  # realtime budgets it raised
            merged = dict(self._state.data.get("resources") or {})
            for key, value in resources.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            self._state.data["resources"] = merged
            self._state.save()

    def stats(self) -> dict:
        from pyoci import stats

        return {"type": "stats", "id": self.id, "data": stats.collect(self.require_cgroup("stat"))}

    def events(self, interval: float, once: bool, emit) -> None:
        """runc's `events`: stats every `interval` and an OOM event whenever one happens,
        until the container stops; `once`: one stats event."""
        import select

        from pyoci import stats

        cgroup = self.require_cgroup("watch")
        if self.status() == "stopped":
            raise PyociError(f'container "{self.id}" is not running')
        if once:
            emit(self.stats())
            return
        import gc

        gc.enable()  # a watch lasts as long as the container (pyoci.__main__ turned it off)
        ooms = stats.oom_count(cgroup)
        while self.status() != "stopped":
            count = stats.oom_count(cgroup)
            if count > ooms:
                emit({"type": "oom", "id": self.id})
                ooms = count
            emit(self.stats())
            select.select([], [], [], interval)

    def _remove_cgroup(self, force: bool, log=None) -> None:
        """rmdir the container's cgroup, once whatever of the container is left in it (exec'd
        processes that outlived the init) is gone; with force they are killed. A process
        that is not the container's is never signalled: its cgroup then stays, an error
        without force, a warning with it (as runc: `delete --force` must end the container,
        and a shim retrying it forever would not help).

        First the usual case, without loading the manager: every directory empty, one
        rmdir each (pyoci.linux.cgroupdirs); anything else is the manager's."""
        from pyoci.linux import cgroupdirs

        if cgroupdirs.remove_if_empty(self._state.data.get("cgroup")):
            return
        cgroup = self.cgroup()
        if cgroup is None:
            return
        left = self._own_pids(cgroup.pids())
        if left and not force:
            raise PyociError(
                f'cannot delete container "{self.id}": processes {left} are still in its cgroup '
                "(use --force)"
            )
        if left:
            from pyoci.reaping import kill_and_wait

            kill_and_wait(left, send=self._signal_own)
        try:
            cgroup.destroy()
        except PyociError as err:
            if not force:
                raise err.wrap(f'cannot delete container "{self.id}"') from None
            if log is not None:
                log.warning(f'container "{self.id}": its cgroup is left in place: {err.msg}')

    # --- kill ----------------------------------------------------------------------------------
    def kill(self, sig: str | int = "TERM", all_processes: bool = False) -> None:
        """Send a signal to the init (or, with all_processes, to every process of the container)."""
        signum = parse_signal(sig)
        status = self.status()
        if status == statelib.CREATING:
            # Serialized with the create: once it is done there is an init (or nothing).
            self._lock().release()
            status = self.status()
        if status == "stopped" and not (all_processes and self.pids()):
            # --all still reaches what outlived the init in the cgroup (how shims clean up).
            raise PyociError(f'container "{self.id}": container not running')
        if all_processes:
            self._signal_all(signum)
        else:
            self._signal_init(signum)

    def _signal_init(self, signum: int) -> None:
        from _signal import pidfd_send_signal  # os/_signal: no ctypes on this hot path

        try:
            pidfd = posix.pidfd_open(self.pid)
        except ProcessLookupError:
            raise PyociError(f'container "{self.id}": container not running') from None
        try:
            # The pidfd pins this exact process; the start time proves it is still ours.
            if not self._state.init_alive():
                raise PyociError(f'container "{self.id}": container not running')
            pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            raise PyociError(
                f'container "{self.id}": container not running, no such process'
            ) from None
        finally:
            posix.close(pidfd)

    def cgroup(self):
        from pyoci.linux.cgroups import Manager

        return Manager.from_state(self._state.data)

    def _is_own(self, pid: int) -> bool:
        """`pid` is the container's: in its cgroup (when it has one) and in its own pid
        namespace (when it made one). A host process placed in the container's cgroup is
        not, nor is a process that reused a pid we listed."""
        cgroup = self.cgroup()
        if cgroup is not None and not cgroup.holds(pid):
            return False
        pidns = self._state.data.get("pidns")
        return pidns is None or statelib.pid_namespace(pid) == pidns

    def _own_pids(self, listed: list[int]) -> list[int]:
        """Those of `listed` in the container's own pid namespace (all of them when it shares
        or joined one: then its cgroup is what says which processes are its)."""
        pidns = self._state.data.get("pidns")
        if pidns is None:
            return listed
        return [pid for pid in listed if statelib.pid_namespace(pid) == pidns]

    def pids(self) -> list[int]:
        """Host pids of every process of the container (init first): those of its cgroup in
        its pid namespace; without a cgroup (rootless), every member of the pid namespace it
        made, or only the init."""
        cgroup = self.cgroup()
        if cgroup is not None:
            listed = self._own_pids(cgroup.pids())
            if listed or not self._state.init_alive():
                return sorted(listed, key=lambda p: p != self.pid)
        if not self._state.init_alive():
            return []
        pidns = self._state.data.get("pidns")
        if pidns is None:
            return [self.pid]  # no pid namespace of its own: only the init is known to be ours
        out = [self.pid]
        for name in posix.listdir("/proc"):
            if (
                name.isdigit()
                and int(name) != self.pid
                and statelib.pid_namespace(int(name)) == pidns
            ):
                out.append(int(name))
        return out

    def _signal_all(self, signum: int) -> None:
        for pid in self.pids():
            self._signal_one(pid, signum)

    def _signal_one(self, pid: int, signum: int) -> None:
        """The init by its pidfd and start time; any other process once proven the
        container's (`_signal_own`)."""
        if pid == self.pid and self._state.init_alive():
            self._signal_init(signum)
        else:
            self._signal_own(pid, signum)

    def _quiet_signal_one(self, pid: int, signum: int) -> None:
        try:
            self._signal_one(pid, signum)
        except PyociError:
            pass  # exited meanwhile

    def _signal_own(self, pid: int, signum: int) -> None:
        """Signal `pid` only if it is still the container's once pinned by a pidfd: between
        listing and signalling it may have exited and its pid gone to a host process."""
        _signal_if(pid, signum, self._is_own)

    # --- delete --------------------------------------------------------------------------------
    def delete(self, force: bool = False, log=None) -> None:
        """Remove a stopped container; with force, kill it first (SIGKILL) and wait."""
        allowed = None if force else ("stopped",)
        refusal = 'cannot delete container "{id}" that is not stopped: {status} (use --force)'
        with _Locked(self, allowed, refusal) as status:
            self._destroy(status, force, log)

    def _destroy(self, status: str, force: bool, log=None) -> None:
        """Lifecycle steps 12-13, under the state lock: kill what is left, undo what create
        did (cgroup, host mounts, network, state), then the poststop hooks."""
        abandoned = self._state.creating  # a create killed half-way: what it recorded goes
        if abandoned and self._state.data.get("netDevicesMoved"):
            from pyoci.linux import network

            # as the failed create would have: back before the init and its namespace die
            network.move_back(self._state.data["netDevicesMoved"], log)
        if status != "stopped" or (abandoned and force):
            from pyoci.reaping import kill_all, wait_all

            try:
                pids = self.pids()
            except PyociError:
                pids = [self.pid]  # its cgroup unreadable: the init, at least
            kill_all(pids, send=self._quiet_signal_one)
            faults.point("delete:kill")
            if status == "paused":
                self.cgroup().freeze(False)  # frozen tasks only die once thawed
            if self.pid in wait_all([self.pid]):
                raise PyociError(
                    f'container "{self.id}": process {self.pid} did not exit after SIGKILL'
                )
        faults.point("delete:cgroup")
        self._remove_cgroup(force, log)
        if abandoned and not self._state.data.get("cgroup"):
            for directory in self._state.data.get("cgroupPlanned") or []:
                try:  # killed between the mkdir and its record: empty, or not ours
                    posix.rmdir(directory)
                except OSError:
                    pass
        faults.point("delete:mounts")
        if self._state.data.get("hostMounts"):
            from pyoci.linux import hostmounts

            hostmounts.detach(self._state.data["hostMounts"])
        elif abandoned and self._state.data.get("hostMountsBefore") is not None:
            from pyoci.linux import hostmounts

            before = set(self._state.data["hostMountsBefore"])
            hostmounts.detach(hostmounts.new_since(self._state.data["rootfs"], before))
        if self._state.data.get("network"):
            from pyoci.linux import network

            faults.point("delete:network")
            # A failed release keeps the state dir, so the next `delete` can finish it (F19);
            # the failure is recorded, and a `delete --force` after one lets it go with a
            # warning: a problem that stays (an unreadable store) must not make the container
            # undeletable, as F5's corrupt state.json did.
            gave_up = force and self._state.data.get("networkReleaseFailed", False)
            try:
                network.release(
                    self._state.root, self.id, self._state.data["network"], log, gave_up
                )
            except PyociError:
                self._state.data["networkReleaseFailed"] = True
                self._state.save()
                raise
        faults.point("delete:state")
        statelib.remove_state_dir(self._state.dir)
        faults.point("delete:poststop")
        self._run_hooks("poststop")


def delete(root: str, container_id: str, force: bool = False, log=None) -> None:
    """`delete`; with force an id already gone is not an error (containerd relies on it),
    and a state.json that is no state (not pyoci's doing) does not keep the container."""
    try:
        Container.load(root, container_id).delete(force, log)
    except statelib.CorruptState as err:
        if not force:
            raise
        _delete_corrupt(root, container_id, err, log)
    except PyociError as err:
        if force and "does not exist" in err.msg:
            return  # (or deleted by another delete while we waited for its lock: gone is gone)
        raise


def _delete_corrupt(root: str, container_id: str, err: PyociError, log=None) -> None:
    """delete --force of a container whose state.json does not parse: what can be known
    without it goes (the processes of, and the directories in every hierarchy of, the
    default cgroup placement `/pyoci/<id>`, which no other container uses), then the state
    dir, with a warning naming what could not be known."""
    lock = statelib.lock_existing(root, container_id)
    try:
        if log is not None:
            log.warning(
                f"{err.msg}: removing the state dir and the cgroup /pyoci/{container_id} "
                "(a cgroupsPath, host mounts or a network it had are not known)"
            )
        if posix.geteuid() == 0:
            from pyoci.linux.cgroups import Manager
            from pyoci.reaping import kill_and_wait

            cgroup = Manager.for_container(None, container_id, False)
            cgroup.made = cgroup.all_dirs()  # its own directories only, not /pyoci
            # pinned, then still in the cgroup: never a pid reused meanwhile
            kill_and_wait(cgroup.pids(), send=lambda pid, sig: _signal_if(pid, sig, cgroup.holds))
            try:
                cgroup.destroy()
            except PyociError as problem:
                if log is not None:
                    log.warning(f'container "{container_id}": its cgroup is left: {problem.msg}')
        statelib.remove_state_dir(f"{root}/{container_id}")
    finally:
        lock.release()


def list_containers(root: str) -> list[dict]:
    """Every container's state, with `owner` filled in as runc's list does: the name of the
    state directory's owner (`state` leaves it empty, as runc's does, and so `create` need
    not ask the user database)."""
    out = []
    names: dict[int, str] = {}
    for container_id in statelib.list_ids(root):
        try:
            state = Container.load(root, container_id).state()
            uid = posix.stat(f"{root}/{container_id}").st_uid
        except (PyociError, FileNotFoundError):
            continue
        if uid not in names:
            names[uid] = _owner_name(uid)
        state["owner"] = names[uid]
        out.append(state)
    return out


__all__ = [
    "Container",
    "delete",
    "list_containers",
    "parse_signal",
    "does_not_exist",
]
